"""The merge stage: bundles in; association tables, figures and a report out."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from naipo_bio.bundle.read import read_bundle
from naipo_bio.contract import (
    CONTINUOUS_KINDS,
    STATUS_SUPPRESSED,
    VARIANT_TABLE,
)
from naipo_bio.errors import MergeError
from naipo_bio.io.atomic import atomic_file, write_text
from naipo_bio.merge.genes import pool_gene_blocks
from naipo_bio.merge.harmonize import read_reference_sites
from naipo_bio.merge.km import write_km_request
from naipo_bio.merge.pool import pool_kind, site_table
from naipo_bio.merge.secure import UNAVAILABLE_NOTE, check_secure, pool_secure
from naipo_bio.merge.validate import check_compatible
from naipo_bio.merge.variants import VariantSettings, pool_variants
from naipo_bio.report.html import build_report
from naipo_bio.report.plots import forest_plot, manhattan_plot, qq_plot, volcano_plot
from naipo_bio.security.signing import verify_all
from naipo_bio.stats.meta import bh_qvalues, genomic_control_lambda

log = logging.getLogger(__name__)

TIES_LABEL = {"breslow": "Breslow", "efron": "Efron"}

#: Unit of one step of each kind, for the report; continuous kinds also get
#: per-SD columns (SD pooled within sites).
KIND_SCALES = {
    "mutation": "mutated vs wild type",
    "expression": "per log2 unit of expression (and per pooled within-site SD)",
    "pseudobulk": "per log2 unit of pseudobulk expression (and per pooled SD)",
    "cell_proportion": "per unit of proportion (0 to 1; and per pooled SD)",
}


def _write_tsv(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, float_format="%.10g", na_rep="NA")
    return path


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]


def methods_text(ties: str) -> str:
    return (
        "Each site fitted a Cox model with the covariates only (its null model) and "
        "computed, per biomarker, the score U and the efficient information V at a "
        f"log hazard ratio of 0 ({TIES_LABEL[ties]} ties). The pooled test is "
        "z = sum U / sqrt(sum V) over the sites where the biomarker passed the "
        "disclosure policy; it equals the score test of a Cox model stratified by "
        "site with site-specific covariate effects fitted to all patients. The "
        "one-step log hazard ratio U/V (SE 1/sqrt(V)) is accurate only near 0. "
        "Per-site Cox fits (biomarker plus covariates) are pooled by inverse-variance "
        "fixed-effect and DerSimonian-Laird random-effects meta-analysis, with "
        "Cochran's Q and I2; sites whose fit did not converge or whose hazard ratio "
        "is infinite (monotone likelihood) are left out of the meta-analysis but "
        "still contribute to the score test. q-values: Benjamini-Hochberg over the "
        "biomarkers of one kind."
    )


def run_merge(
    bundle_paths: list[str | Path],
    out_dir: str | Path,
    top_hits: int = 5,
    fdr: float = 0.05,
    variant_settings: dict[str, Any] | None = None,
    report: bool = True,
    registry: str | Path | None = None,
    require_signatures: bool = False,
    expected_analysis: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge the bundles and write every output under ``out_dir``.

    Returns the summary that is also written to ``summary.json``. When the
    analysis asks for Kaplan-Meier curves, ``km_request.tsv`` lists what the
    sites should compute in the second round.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise MergeError(f"The merge output {out_dir} is a file; name a folder.")
    bundles = [read_bundle(p) for p in bundle_paths]
    check_compatible(bundles)
    verify_all(bundles, registry, require_signatures, expected_analysis)
    for bundle in bundles:
        if bundle.manifest.get("round") == "km":
            raise MergeError(
                f"{bundle.path} is a Kaplan-Meier bundle of the second round; merge it "
                "with 'naipo-bio merge-km'."
            )
    # Forest plots of an earlier merge's top hits would be mistaken for this one's.
    for stale in (out_dir / "plots").glob("forest.*.png"):
        stale.unlink()
    first = bundles[0].manifest
    kinds = sorted({k for b in bundles for k in b.kinds})
    summary: dict[str, Any] = {
        "analysis_id": first["analysis_id"],
        "config_hash": first["config_hash"],
        "ties": first["ties"],
        "genome_build": first["genome_build"],
        "fdr": fdr,
        "test": (
            f"Cox score test stratified by site ({TIES_LABEL[first['ties']]} ties), "
            f"{len(bundles)} sites, "
            f"{sum(b.manifest['counts']['patients'] for b in bundles)} patients, "
            f"{sum(b.manifest['counts']['events'] for b in bundles)} events."
        ),
        "sites": [
            {
                "site": b.site_id,
                **b.manifest["counts"],
                "created": b.manifest["created"],
            }
            for b in bundles
        ],
        "kinds": {},
        "figures": {},
        "notes": [],
        "methods": methods_text(first["ties"]),
    }
    tables: dict[str, pd.DataFrame] = {}
    plots = out_dir / "plots"
    secure = any(b.manifest.get("mode") == "secure" for b in bundles)
    secure_tables = {}
    if secure:
        check_secure(bundles)
        secure_tables = pool_secure(bundles)
        kinds = sorted(secure_tables)
        summary["mode"] = "secure aggregation"
        summary["notes"].append(UNAVAILABLE_NOTE)
    for kind in kinds:
        if secure:
            pooled = secure_tables[kind]
            sites = None
            suppressed = sum(
                sum(
                    b.manifest["disclosure"]["summary"]
                    .get(kind, {})
                    .get("suppressed", {})
                    .values()
                )
                for b in bundles
            )
        else:
            sites = site_table(bundles, kind)
            pooled = pool_kind(sites, len(bundles))
            _write_tsv(sites, out_dir / "tables" / f"site_estimates.{kind}.tsv")
            suppressed = int((sites.status == STATUS_SUPPRESSED).sum())
        tables[kind] = pooled
        _write_tsv(pooled, out_dir / "tables" / f"associations.{kind}.tsv")
        tested = pooled.loc[pooled.n_sites_tested > 0]
        significant = int((tested.q < fdr).sum())
        summary["kinds"][kind] = {
            "biomarkers": int(len(pooled)),
            "tested": int(len(tested)),
            "significant": significant,
            "lambda_gc": genomic_control_lambda(tested.p.to_numpy()),
            "suppressed_site_rows": suppressed,
            "scale": KIND_SCALES.get(kind),
        }
        figures: dict[str, list[str]] = {"qq": [], "volcano": [], "forest": []}
        figures["qq"].append(
            _relative(qq_plot(tested.p.to_numpy(), f"{kind}: pooled score tests",
                              plots / f"qq.{kind}.png"), out_dir)
        )  # fmt: skip
        if kind in CONTINUOUS_KINDS and len(tested):
            figures["volcano"].append(
                _relative(volcano_plot(tested, f"{kind}: effect and significance",
                                       plots / f"volcano.{kind}.png", fdr), out_dir)
            )  # fmt: skip
        for _, row in (
            tested.head(top_hits) if sites is not None else tested.iloc[:0]
        ).iterrows():
            rows = sites.loc[sites.biomarker_id == row.biomarker_id]
            label = row.gene or row.biomarker_id
            figure = forest_plot(
                rows, row, f"{kind}: {label} (score p = {row.p:.3g})",
                plots / f"forest.{kind}.{_safe_name(row.biomarker_id)}.png",
            )  # fmt: skip
            figures["forest"].append(_relative(figure, out_dir))
        summary["figures"][kind] = figures
        log.info(
            "%s: %d biomarkers tested, %d with q < %g",
            kind,
            len(tested),
            significant,
            fdr,
        )
    _merge_variants(bundles, out_dir, summary, tables, variant_settings or {}, fdr)
    km = first["analysis"].get("km", {})
    if km.get("enabled") and not secure:
        request = write_km_request(bundles, tables, km, out_dir / "km_request.tsv")
        summary["notes"].append(
            f"Kaplan-Meier round: {len(request)} biomarkers requested from the sites "
            "(km_request.tsv)."
        )
    write_text(
        out_dir / "summary.json", json.dumps(summary, indent=2, default=float) + "\n"
    )
    if report:
        build_report(out_dir)
    return summary


def _relative(path: Path, root: Path) -> str:
    return str(Path(path).relative_to(root))


def _merge_variants(bundles, out_dir, summary, tables, settings, fdr) -> None:
    reference = None
    if settings.get("reference_sites"):
        reference = read_reference_sites(settings["reference_sites"])
    result = pool_variants(
        bundles,
        out_dir,
        VariantSettings(
            min_pooled_mac=settings.get("min_pooled_mac", 10.0),
            ambiguous_max_maf=settings.get("ambiguous_max_maf", 0.4),
            reference=reference,
        ),
    )
    if result is None:
        return
    p = np.concatenate(result.p) if result.p else np.array([])
    contig, pos, sample_p = result.sketch.arrays()
    plots = out_dir / "plots"
    qq = qq_plot(p, "variants: pooled score tests", plots / "qq.variant.png")
    manhattan = manhattan_plot(
        contig,
        pos,
        sample_p,
        "variants: pooled score tests",
        plots / "manhattan.variant.png",
        lambda_gc=genomic_control_lambda(p),
        n_tests=p.size,
    )
    summary["figures"]["variant"] = {
        "qq": [_relative(qq, out_dir)], "manhattan": [_relative(manhattan, out_dir)],
    }  # fmt: skip
    withheld = [
        b.manifest["disclosure"]["summary"].get(VARIANT_TABLE, {}) for b in bundles
    ]
    summary["kinds"]["variant"] = {
        "biomarkers": result.n_variants,
        "tested": result.n_tested,
        "significant": int((bh_qvalues(p) < fdr).sum()) if p.size else 0,
        "lambda_gc": genomic_control_lambda(p),
        "suppressed_site_rows": sum(
            sum(w.get("suppressed", {}).values()) for w in withheld
        ),
        "low_mac_flagged": result.n_low_mac,
        "ambiguous_dropped": result.n_ambiguous_dropped,
        "scale": "per ALT allele (dosage)",
    }
    genes = pool_gene_blocks(bundles, settings.get("rare_maf", 0.01), reference)
    if genes is not None:
        _write_tsv(genes, out_dir / "tables" / "gene_tests.tsv")
        tested = genes.skato_p.notna()
        summary["kinds"]["gene"] = {
            "biomarkers": int(len(genes)),
            "tested": int(tested.sum()),
            "significant": int((genes.skato_q < fdr).sum()),
            "lambda_gc": genomic_control_lambda(genes.skato_p.to_numpy()),
            "suppressed_site_rows": sum(
                w.get("gene_blocks_withheld", 0) for w in withheld
            ),
        }
