"""Checking chrX genotypes against the sex recorded in the clinical table.

On the non-pseudoautosomal part of chrX, a patient with haploid calls is
genotyped as male. Callers that write male chrX as diploid leave no haploid
calls; then a heterozygosity rate below ``MALE_MAX_HETEROZYGOSITY`` marks a
male. A mismatch usually means a sample swap or a wrong sex entry. Mismatched
patients are listed in the site's log only; the bundle gets the counts.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from naipo_bio.errors import DataQualityWarning, InputError
from naipo_bio.genotypes._parse import ABSENT
from naipo_bio.genotypes.reader import ReadStats, Region
from naipo_bio.io.tables import read_text_table

log = logging.getLogger(__name__)

MALE_MAX_HETEROZYGOSITY = 0.01
MAX_RECORDS = 20000
SEX_VALUES = {"male": "male", "m": "male", "female": "female", "f": "female"}

#: Pseudoautosomal regions of chrX (1-based inclusive), by build.
PAR_X = {
    "GRCh37": ((60001, 2699520), (154931044, 155260560)),
    "GRCh38": ((10001, 2781479), (155701383, 156030895)),
}


def non_par_region(contig: str, length: int | None, build: str | None) -> Region:
    """The part of chrX between the two pseudoautosomal regions."""
    if build is None:
        return Region(contig, 1, length or 2**31 - 1)
    (_, par1_end), (par2_start, _) = PAR_X[build]
    return Region(contig, par1_end + 1, par2_start - 1)


def check_sex(prepared, config: dict[str, Any]) -> dict[str, int] | None:
    """Compare inferred and recorded sex; return aggregate counts (or None)."""
    analysis = config["analysis"]
    column = analysis["variants"]["sex_check"]
    gfile = prepared.germline
    if column is None or gfile is None:
        return None
    site = config["sites"][prepared.site_id]
    path = site["clinical"]["path"]
    frame = read_text_table(path, "clinical")
    if column not in frame.columns:
        raise InputError(
            f"{path}: sex_check names the column {column!r}, which the clinical table "
            "does not have."
        )
    id_column = site["clinical"].get("columns", {}).get("patient_id", "patient_id")
    sexes = frame[column].str.strip().str.lower().map(SEX_VALUES)
    recorded = dict(zip(frame[id_column], sexes, strict=True))
    x_names = [name for name, canonical in gfile.contigs.items() if canonical == "X"]
    if not x_names:
        log.info("sex check skipped: %s has no chrX", gfile.path)
        return {"checked": 0, "mismatched": 0, "unknown_sex": 0}
    length = gfile.header_lengths.get(x_names[0])
    region = non_par_region(x_names[0], length, analysis["genome_build"])
    haploid = np.zeros(len(prepared.analysed.patient_ids))
    het = np.zeros_like(haploid)
    diploid = np.zeros_like(haploid)
    records = 0
    stats = ReadStats()
    for raw in gfile.raw_blocks(region, stats, prepared.germline_columns):
        a1 = raw.alleles[:, :, 0]
        a2 = raw.alleles[:, :, 1]
        haploid += ((a2 == ABSENT) & (a1 >= 0)).sum(axis=0)
        called = (a1 >= 0) & (a2 >= 0)
        diploid += called.sum(axis=0)
        het += (called & (a1 != a2)).sum(axis=0)
        records += len(raw.records)
        if records >= MAX_RECORDS:
            break
    if records == 0:
        log.info("sex check skipped: no records on the non-pseudoautosomal chrX")
        return {"checked": 0, "mismatched": 0, "unknown_sex": 0}
    with np.errstate(invalid="ignore", divide="ignore"):
        het_rate = np.where(diploid > 0, het / diploid, np.nan)
    diploid_male = het_rate < MALE_MAX_HETEROZYGOSITY
    inferred = np.where(haploid > 0, "male", np.where(diploid_male, "male", "female"))
    inferred = np.where((haploid == 0) & (diploid == 0), "unknown", inferred)
    patients = prepared.analysed.patient_ids
    declared = np.array([recorded.get(p) for p in patients], dtype=object)
    known = (declared != None) & (inferred != "unknown")  # noqa: E711
    mismatched = known & (declared != inferred)
    counts = {
        "checked": int(known.sum()),
        "mismatched": int(mismatched.sum()),
        "unknown_sex": int((~known).sum()),
    }
    if mismatched.any():
        listed = ", ".join(map(str, patients[mismatched][:20]))
        warnings.warn(
            f"{counts['mismatched']} of {counts['checked']} patients have chrX "
            f"genotypes that disagree with their recorded sex ({listed}). "
            "Check for sample swaps or sex entry errors before sending the bundle.",
            DataQualityWarning,
            stacklevel=2,
        )
    return counts
