"""The site stage: a site's inputs in, one summary bundle out."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from naipo_bio.bundle.write import association_arrow, write_bundle
from naipo_bio.config import analysis_hash
from naipo_bio.contract import (
    CONTINUOUS_KINDS,
    GENE_BLOCK_TABLE,
    HISTOGRAM_SCHEMA,
    HISTOGRAM_TABLE,
    STATUS_OK,
    TIME_UNIT,
    VARIANT_TABLE,
)
from naipo_bio.genotypes.genes import BedGenes
from naipo_bio.genotypes.reader import Region
from naipo_bio.security.keys import load_private
from naipo_bio.security.signing import sign_bundle
from naipo_bio.site import disclosure
from naipo_bio.site.prepare import PreparedSite, prepare_site
from naipo_bio.site.secure import check_secure_setup, secure_tables
from naipo_bio.site.sexcheck import check_sex
from naipo_bio.site.statistics import BiomarkerData, biomarker_table
from naipo_bio.site.variants import (
    compute_chunk,
    gene_block_arrow,
    gene_blocks,
    gene_source,
    read_chunk,
    variant_arrow,
    write_chunk,
)
from naipo_bio.stats._numba import set_threads
from naipo_bio.stats.histogram import GRID, coarse_histogram

log = logging.getLogger(__name__)


def chunk_regions(prepared: PreparedSite, config: dict[str, Any]) -> list[Region]:
    """Regions of the site's germline VCF, as the chunk jobs cut them."""
    if prepared.germline is None:
        return []
    return prepared.germline.regions(config["analysis"]["variants"]["chunk_size"])


def run_variant_chunk(
    prepared: PreparedSite, config: dict[str, Any], region: Region, prefix: str | Path
) -> None:
    """Compute and write one chunk of the site's germline variants."""
    site = config["sites"][prepared.site_id]
    variants = config["analysis"]["variants"]
    genes = gene_source(prepared.germline, variants, site["germline"].get("gene_bed"))
    result = compute_chunk(
        prepared.germline, region, prepared.germline_columns, prepared.design,
        prepared.null, variants, genes,
    )  # fmt: skip
    write_chunk(result, prefix)
    log.info(
        "%s: %d records, %d tests, %d filtered", region.name, result.stats.records,
        result.stats.tests, result.stats.filtered,
    )  # fmt: skip


def _variant_tables(prepared, config, chunk_prefixes, policy):
    """Gather the chunks into the releasable variant table and gene blocks."""
    import pandas as pd

    site = config["sites"][prepared.site_id]
    genes = gene_source(
        prepared.germline,
        config["analysis"]["variants"],
        site["germline"].get("gene_bed"),
    )
    tables = []
    rare = []
    for prefix in chunk_prefixes:
        table, rare_variants, rare_dosage = read_chunk(prefix)
        tables.append(table)
        rare.append((rare_variants, rare_dosage))
    variant_table = pd.concat(tables, ignore_index=True) if tables else None
    blocks = gene_blocks(rare, prepared.design, prepared.null)
    variant_table, blocks, summary = disclosure.apply_variant_policy(
        variant_table, blocks, policy
    )
    if isinstance(genes, BedGenes):
        present = set(prepared.germline.contigs.values())
        summary["regions_on_absent_contigs"] = genes.absent(present)
    return variant_arrow(variant_table), gene_block_arrow(blocks), summary


def modality_values(prepared: PreparedSite, kind: str) -> np.ndarray:
    """Values (m, n) of a kind, columns in the analysed patients' order."""
    modality = prepared.modalities[kind]
    column = {p: i for i, p in enumerate(modality.patients) if p is not None}
    index = np.array([column[p] for p in prepared.analysed.patient_ids], dtype=np.int64)
    return modality.values[:, index]


def histogram_rows(kind: str, data: BiomarkerData, released, min_cell: int):
    """Coarse histograms of the released biomarkers of a continuous kind."""
    rows = []
    width = GRID[kind]
    for i in np.flatnonzero(released):
        for low, high, count in coarse_histogram(data.values[i], width, min_cell):
            rows.append((kind, data.ids[i], low, high, count))
    return pd.DataFrame(rows, columns=HISTOGRAM_SCHEMA.names)


def run_site(
    site_id: str,
    config: dict[str, Any],
    out_path: str | Path,
    report_dir: str | Path | None = None,
    threads: int | None = None,
    chunk_prefixes: list[str] | None = None,
) -> Path:
    """Run the site stage of ``site_id`` and write its bundle to ``out_path``.

    ``report_dir`` receives the join report, which lists patient ids and so
    stays at the site. Germline chunks already computed by separate jobs are
    passed as ``chunk_prefixes``; otherwise they are computed here in turn.
    """
    set_threads(threads if threads is not None else config.get("threads"))
    analysis = config["analysis"]
    policy = analysis["disclosure"]
    if analysis["secure"]["enabled"]:
        check_secure_setup(site_id, config)
    prepared = prepare_site(site_id, config, report_dir)
    checks = {}
    sex = check_sex(prepared, config)
    if sex is not None:
        checks["sex"] = sex
    tables = {}
    summaries = {}
    histograms = []
    inputs = {}
    released: dict = {}
    for kind, modality in prepared.modalities.items():
        if modality.notes:
            inputs[kind] = modality.notes
        data = BiomarkerData(
            kind, list(modality.ids), list(modality.labels),
            modality_values(prepared, kind),
        )  # fmt: skip
        table = biomarker_table(
            prepared.design, prepared.null, data, fits=analysis["fits"]
        )
        table, summaries[kind] = disclosure.apply_policy(table, kind, policy)
        released[kind] = table
        tables[kind] = association_arrow(table)
        if kind in CONTINUOUS_KINDS:
            ok = (table.status == STATUS_OK).to_numpy()
            histograms.append(histogram_rows(kind, data, ok, policy["min_cell"]))
        log.info(
            "%s: %d biomarkers, %d released, suppressed %s",
            kind, summaries[kind]["biomarkers"], summaries[kind]["released"],
            summaries[kind]["suppressed"] or "none",
        )  # fmt: skip
    if histograms:
        tables[HISTOGRAM_TABLE] = pa.Table.from_pandas(
            pd.concat(histograms, ignore_index=True),
            schema=HISTOGRAM_SCHEMA,
            preserve_index=False,
        ).replace_schema_metadata(None)
    if prepared.germline is not None:
        if chunk_prefixes is None:
            # The chunk side files hold genotypes: keep them in a temporary
            # folder that is deleted once the bundle's tables are built.
            out_parent = Path(out_path).parent
            out_parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".chunks-", dir=out_parent) as work:
                prefixes = []
                for region in chunk_regions(prepared, config):
                    prefix = str(Path(work) / region.name)
                    run_variant_chunk(prepared, config, region, prefix)
                    prefixes.append(prefix)
                variant, blocks, summaries[VARIANT_TABLE] = _variant_tables(
                    prepared, config, prefixes, policy
                )
        else:
            variant, blocks, summaries[VARIANT_TABLE] = _variant_tables(
                prepared, config, chunk_prefixes, policy
            )
        tables[VARIANT_TABLE] = variant
        if analysis["variants"]["gene_tests"]["enabled"]:
            tables[GENE_BLOCK_TABLE] = blocks

    manifest = {
        "site_id": site_id,
        "analysis_id": analysis["id"],
        "config_hash": analysis_hash(analysis),
        "analysis": analysis,
        "ties": analysis["ties"],
        "time_unit": TIME_UNIT,
        "genome_build": analysis["genome_build"],
        "counts": {
            "patients": len(prepared.analysed.patient_ids),
            "events": prepared.n_events,
        },
        "covariates": list(prepared.design.covariate_names),
        "disclosure": {"policy": policy, "summary": summaries},
        "checks": checks,
        "inputs": inputs,
    }
    if analysis["secure"]["enabled"]:
        tables, manifest["secure"] = secure_tables(
            site_id, config, released, report_dir
        )
        manifest["mode"] = "secure"
    return finish_bundle(out_path, manifest, tables, config["sites"][site_id])


def finish_bundle(out_path, manifest: dict, tables: dict, site: dict) -> Path:
    """Write the bundle and, when the site has a signing key, sign it.

    The key is read first and the signature is written before the bundle is
    renamed into place, so a bad key leaves no unsigned bundle behind.
    """
    sign = None
    if site.get("signing"):
        key = load_private(site["signing"]["private_key"], "signing")

        def sign(folder: Path) -> None:
            sign_bundle(folder, key, manifest["site_id"])

    return write_bundle(out_path, manifest, tables, finish=sign)
