"""Reading a site's inputs, joining them, and fitting the site's null model."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from naipo_bio.errors import InputError
from naipo_bio.genotypes.reader import GenotypeFile, GenotypeOptions
from naipo_bio.io.atomic import write_text
from naipo_bio.io.clinical import ClinicalData, read_clinical
from naipo_bio.io.expression import read_expression
from naipo_bio.io.ids import (
    JoinResult,
    join_patients,
    read_sample_map,
    samples_to_patients,
)
from naipo_bio.io.singlecell import read_single_cell
from naipo_bio.io.somatic import read_somatic
from naipo_bio.site import disclosure
from naipo_bio.stats import cox

log = logging.getLogger(__name__)


@dataclass
class Modality:
    """One molecular input: biomarker ids, labels, values (m, samples), and the
    patient of each sample column (None where unmapped)."""

    ids: list[str]
    labels: list[str]
    values: np.ndarray
    patients: np.ndarray
    notes: dict = field(default_factory=dict)


@dataclass
class PreparedSite:
    """Everything the site stage needs after reading and joining the inputs."""

    site_id: str
    analysed: ClinicalData
    design: cox.SurvivalDesign
    null: cox.NullModel
    modalities: dict[str, Modality] = field(default_factory=dict)
    germline: GenotypeFile | None = None
    germline_columns: np.ndarray | None = None
    join: JoinResult | None = None

    @property
    def n_events(self) -> int:
        return int(self.analysed.event.sum())


def genotype_options(variants: dict[str, Any], site: dict[str, Any]) -> GenotypeOptions:
    return GenotypeOptions(
        dosage_field=variants["dosage_field"],
        half_call=variants["half_call"],
        haploid_alt=int(variants["haploid_alt"]),
        filters=frozenset(variants["filters"]),
    )


def _log_unmapped(unmapped: list[str], source) -> None:
    if unmapped:
        log.warning(
            "%s: %d sample(s) are not in the sample map and are skipped: %s",
            source, len(unmapped), ", ".join(unmapped[:10]),
        )  # fmt: skip


def _load_modalities(site: dict[str, Any], analysis: dict[str, Any], sample_map):
    modalities: dict[str, Modality] = {}
    if site.get("somatic"):
        status = read_somatic(
            site["somatic"], analysis["mutation"], analysis["genome_build"]
        )
        patients, unmapped = samples_to_patients(
            status.samples, sample_map, status.source, "somatic data"
        )
        _log_unmapped(unmapped, status.source)
        modalities["mutation"] = Modality(
            status.genes, status.genes, status.matrix, patients
        )
    if site.get("expression"):
        expression = read_expression(site["expression"])
        patients, unmapped = samples_to_patients(
            expression.samples, sample_map, expression.source, "expression data"
        )
        _log_unmapped(unmapped, expression.source)
        modalities["expression"] = Modality(
            expression.gene_ids, expression.labels, expression.matrix, patients,
            notes={
                "input_scale": expression.scale,
                "transform": expression.transform,
                "excluded_gene_ids": expression.excluded,
            },
        )  # fmt: skip
    if site.get("single_cell"):
        cells = read_single_cell(site["single_cell"])
        path = site["single_cell"]["path"]
        patients, unmapped = samples_to_patients(
            cells.patients, sample_map, path, "cells"
        )
        _log_unmapped(unmapped, path)
        modalities["pseudobulk"] = Modality(
            cells.pseudobulk_ids, cells.pseudobulk_ids, cells.pseudobulk, patients,
            notes={"transform": "sum of raw counts per patient and cell type, "
                                "then log2(CPM + 1)"},
        )  # fmt: skip
        modalities["cell_proportion"] = Modality(
            cells.proportion_ids, cells.proportion_ids, cells.proportions, patients
        )
    return modalities


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


#: Keys of a site's sections whose values name input files.
FILE_KEYS = ("path", "vcf", "maf", "maf_samples", "gene_map", "gene_bed", "private_key")


def check_input_files(site: dict[str, Any], site_id: str) -> None:
    """Stop before any work if a file named in the site's sections is missing,
    listing every missing one with its config key."""
    missing = []
    for section, settings in site.items():
        if not isinstance(settings, dict):
            continue
        for key in FILE_KEYS:
            value = settings.get(key)
            if isinstance(value, str) and not Path(value).exists():
                missing.append(f"sites.{site_id}.{section}.{key} = {value}")
    if missing:
        raise InputError(
            "Input file(s) not found: " + "; ".join(missing) + f" (working folder "
            f"{Path.cwd()}). Fix the paths in the config; relative paths are read "
            "from the folder the command runs in."
        )


def prepare_site(
    site_id: str,
    config: dict[str, Any],
    report_dir: str | Path | None = None,
    patients_file: str | Path | None = None,
) -> PreparedSite:
    """Read and join a site's inputs and fit its null model.

    With ``patients_file`` (written by :func:`write_patients`), the analysed
    patients are taken from it and only the clinical table and the germline
    header are read: the path of the per-chunk jobs.
    """
    analysis = config["analysis"]
    if site_id not in config.get("sites", {}):
        raise InputError(
            f"Site {site_id!r} is not in the configuration's sites "
            f"({sorted(config.get('sites', {}))})."
        )
    site = config["sites"][site_id]
    check_input_files(site, site_id)
    clinical = read_clinical(site["clinical"], analysis)
    sample_map = read_sample_map(site.get("sample_map"))
    germline = None
    germline_patients = None
    if site.get("germline"):
        germline = GenotypeFile(
            site["germline"]["vcf"], analysis["genome_build"],
            genotype_options(analysis["variants"], site),
        )  # fmt: skip
        germline_patients, unmapped = samples_to_patients(
            germline.samples, sample_map, germline.path, "germline VCF"
        )
        _log_unmapped(unmapped, germline.path)

    join = None
    modalities: dict[str, Modality] = {}
    if patients_file is not None:
        listed = [p for p in Path(patients_file).read_text().splitlines() if p]
        missing = sorted(set(listed) - set(clinical.patient_ids))
        if missing:
            raise InputError(
                f"{patients_file}: {len(missing)} listed patient(s) are not in the "
                "clinical table (it changed since the list was written); rerun the "
                "site's patient step."
            )
        keep = _members(clinical.patient_ids, listed)
    else:
        modalities = _load_modalities(site, analysis, sample_map)
        sides = {kind: m.patients for kind, m in modalities.items()}
        if germline_patients is not None:
            sides["germline"] = germline_patients
        if not sides:
            raise InputError(
                f"Site {site_id!r} names no molecular input; add somatic, expression "
                "and/or germline."
            )
        join = join_patients(clinical.patient_ids, sides)
        if report_dir is not None:
            write_text(
                Path(report_dir) / "join_report.tsv",
                "\n".join(join.report_lines()) + "\n",
            )
        for hint in join.hints:
            log.warning("%s", hint)
        lost = {side: len(ids) for side, ids in join.unmatched.items() if ids}
        if lost:
            where = (
                f"listed in {Path(report_dir) / 'join_report.tsv'}"
                if report_dir is not None
                else "run with --report-dir to list them"
            )
            log.warning(
                "%d of %d clinical patients joined; ids without a match: %s (%s)",
                len(join.patients), len(clinical.patient_ids),
                ", ".join(f"{side}: {n}" for side, n in lost.items()), where,
            )  # fmt: skip
        fraction = len(join.patients) / max(len(clinical.patient_ids), 1)
        if fraction < site["min_joined_fraction"]:
            raise InputError(
                f"Only {len(join.patients)} of {len(clinical.patient_ids)} clinical "
                f"patients ({fraction:.0%}) join the molecular data, below "
                f"min_joined_fraction = {site['min_joined_fraction']}. Check the "
                "sample map and the ids; the join report lists the unmatched ids."
            )
        keep = _members(clinical.patient_ids, join.patients)
    analysed = clinical.subset(keep)
    disclosure.check_site(
        len(analysed.patient_ids), int(analysed.event.sum()),
        analysis["disclosure"], site_id,
    )  # fmt: skip
    design = _design(analysed, analysis)
    null = cox.fit_null(design)
    columns = None
    if germline is not None:
        position = {p: i for i, p in enumerate(germline_patients) if p is not None}
        columns = np.array([position[p] for p in analysed.patient_ids], dtype=np.int64)
    return PreparedSite(
        site_id, analysed, design, null, modalities, germline, columns, join
    )


def _members(ids: np.ndarray, wanted) -> np.ndarray:
    """Boolean mask of ``ids`` found in ``wanted`` (a set lookup; np.isin is
    slow on object arrays)."""
    wanted = set(wanted)
    return np.fromiter((i in wanted for i in ids), dtype=bool, count=len(ids))


def write_patients(prepared: PreparedSite, path: str | Path) -> Path:
    """Write the analysed patient ids (one per line; stays at the site)."""
    return write_text(path, "\n".join(map(str, prepared.analysed.patient_ids)) + "\n")
