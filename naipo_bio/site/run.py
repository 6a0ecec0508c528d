"""The site stage: read a site's inputs, compute its statistics, write its bundle."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from naipo_bio.bundle.write import association_arrow, write_bundle
from naipo_bio.config import analysis_hash
from naipo_bio.contract import TIME_UNIT
from naipo_bio.errors import InputError
from naipo_bio.io.atomic import write_text
from naipo_bio.io.clinical import ClinicalData, read_clinical
from naipo_bio.io.expression import read_expression
from naipo_bio.io.ids import join_patients, read_sample_map, samples_to_patients
from naipo_bio.io.somatic import read_somatic
from naipo_bio.site import disclosure
from naipo_bio.site.statistics import BiomarkerData, biomarker_table
from naipo_bio.stats import cox
from naipo_bio.stats._numba import set_threads

log = logging.getLogger(__name__)


def _load_modalities(site: dict[str, Any], analysis: dict[str, Any]):
    """Read each molecular input and map its samples to patients."""
    sample_map = read_sample_map(site.get("sample_map"))
    modalities = {}
    if site.get("somatic"):
        status = read_somatic(
            site["somatic"], analysis["mutation"], analysis["genome_build"]
        )
        patients, unmapped = samples_to_patients(
            status.samples, sample_map, status.source, "somatic data"
        )
        modalities["mutation"] = (status.genes, status.genes, status.matrix, patients)
        _log_unmapped(unmapped, status.source)
    if site.get("expression"):
        expression = read_expression(site["expression"])
        patients, unmapped = samples_to_patients(
            expression.samples, sample_map, expression.source, "expression data"
        )
        modalities["expression"] = (
            expression.gene_ids,
            expression.labels,
            expression.matrix,
            patients,
        )
        _log_unmapped(unmapped, expression.source)
    if not modalities:
        raise InputError(
            "The site configuration names no molecular input; add somatic and/or "
            "expression."
        )
    return modalities


def _log_unmapped(unmapped: list[str], source: Path) -> None:
    if unmapped:
        log.warning(
            "%s: %d sample(s) are not in the sample map and are skipped: %s",
            source, len(unmapped), ", ".join(unmapped[:10]),
        )  # fmt: skip


def _design(clinical: ClinicalData, analysis: dict[str, Any]) -> cox.SurvivalDesign:
    design = cox.SurvivalDesign.from_arrays(
        clinical.time_days,
        clinical.event,
        clinical.covariates.to_numpy(dtype=np.float64),
        strata=clinical.strata,
        covariate_names=list(clinical.covariates.columns),
        ties=analysis["ties"],
    )
    design, dropped = design.without_constant_covariates()
    if dropped:
        log.warning(
            "Covariate column(s) %s take one value among this site's analysed "
            "patients and are dropped; the site's baseline hazard absorbs them.",
            dropped,
        )
    return design


def run_site(
    site_id: str,
    config: dict[str, Any],
    out_path: str | Path,
    report_dir: str | Path | None = None,
    threads: int | None = None,
) -> Path:
    """Run the site stage of ``site_id`` and write its bundle to ``out_path``.

    ``report_dir`` receives the join report, which lists patient ids and so
    stays at the site.
    """
    set_threads(threads if threads is not None else config.get("threads"))
    analysis = config["analysis"]
    if site_id not in config.get("sites", {}):
        raise InputError(
            f"Site {site_id!r} is not in the configuration's sites "
            f"({sorted(config.get('sites', {}))})."
        )
    site = config["sites"][site_id]
    policy = analysis["disclosure"]
    clinical = read_clinical(site["clinical"], analysis)
    modalities = _load_modalities(site, analysis)

    join = join_patients(
        clinical.patient_ids, {kind: m[3] for kind, m in modalities.items()}
    )
    if report_dir is not None:
        write_text(
            Path(report_dir) / "join_report.tsv", "\n".join(join.report_lines()) + "\n"
        )
    for hint in join.hints:
        log.warning("%s", hint)
    fraction = len(join.patients) / max(len(clinical.patient_ids), 1)
    if fraction < site["min_joined_fraction"]:
        raise InputError(
            f"Only {len(join.patients)} of {len(clinical.patient_ids)} clinical "
            f"patients ({fraction:.0%}) join the molecular data, below "
            f"min_joined_fraction = {site['min_joined_fraction']}. Check the sample "
            "map and the ids; the "
            "join report lists the unmatched ids."
        )
    analysed = clinical.subset(np.isin(clinical.patient_ids, join.patients))
    n_events = int(analysed.event.sum())
    disclosure.check_site(len(analysed.patient_ids), n_events, policy, site_id)

    design = _design(analysed, analysis)
    null = cox.fit_null(design)
    tables = {}
    summaries = {}
    for kind, (ids, genes, matrix, patients) in modalities.items():
        column = {p: i for i, p in enumerate(patients) if p is not None}
        index = np.array([column[p] for p in analysed.patient_ids], dtype=np.int64)
        data = BiomarkerData(kind, list(ids), list(genes), matrix[:, index])
        table = biomarker_table(design, null, data, fits=analysis["fits"])
        table, summaries[kind] = disclosure.apply_policy(table, kind, policy)
        tables[kind] = association_arrow(table)
        log.info(
            "%s: %d biomarkers, %d released, suppressed %s",
            kind, summaries[kind]["biomarkers"], summaries[kind]["released"],
            summaries[kind]["suppressed"] or "none",
        )  # fmt: skip

    manifest = {
        "site_id": site_id,
        "analysis_id": analysis["id"],
        "config_hash": analysis_hash(analysis),
        "analysis": analysis,
        "ties": analysis["ties"],
        "time_unit": TIME_UNIT,
        "genome_build": analysis["genome_build"],
        "counts": {"patients": len(analysed.patient_ids), "events": n_events},
        "covariates": list(design.covariate_names),
        "disclosure": {"policy": policy, "summary": summaries},
    }
    return write_bundle(out_path, manifest, tables)
