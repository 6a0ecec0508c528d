"""Sample-to-patient mapping and the join of molecular data to clinical patients.

Joins are exact. Ids that fail to join are reported on each side, with a hint
when they would match after trimming white space or changing case, but they are
never matched that way: only an explicit sample map renames ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from naipo_bio.errors import InputError
from naipo_bio.io.tables import is_missing, read_text_table, require_columns

log = logging.getLogger(__name__)


def check_unique_samples(samples: list[str], path: str | Path, what: str) -> None:
    """Raise if a sample name occurs twice in one file's header."""
    seen: dict[str, int] = {}
    for position, name in enumerate(samples):
        if name in seen:
            raise InputError(
                f"{path}: the {what} has the sample name {name!r} twice (columns "
                f"{seen[name] + 1} and {position + 1}). Sample names must be unique; "
                "rename or drop one of them (bcftools reheader -s can rename)."
            )
        seen[name] = position


def read_sample_map(config: dict[str, Any] | None) -> dict[str, str] | None:
    """Read the sample -> patient map named in the site configuration."""
    if not config or "path" not in config:
        return None
    path = Path(config["path"])
    frame = read_text_table(path, "sample map")
    sample_col = config.get("sample_column", "sample")
    patient_col = config.get("patient_column", "patient")
    require_columns(
        frame, {"sample": sample_col, "patient": patient_col}, path, "sample map"
    )
    samples = frame[sample_col]
    patients = frame[patient_col]
    empty = is_missing(samples) | is_missing(patients)
    if empty.any():
        line = int(np.flatnonzero(empty.to_numpy())[0]) + 2
        raise InputError(f"{path}: line {line} has an empty sample or patient id.")
    repeated = samples[samples.duplicated(keep=False)]
    if not repeated.empty:
        raise InputError(
            f"{path}: sample {repeated.iloc[0]!r} is listed more than once. Each "
            "sample may map to one patient only."
        )
    return dict(zip(samples, patients, strict=True))


def samples_to_patients(
    samples: list[str], sample_map: dict[str, str] | None, path: str | Path, what: str
) -> tuple[np.ndarray, list[str]]:
    """Patient id of each sample (None where unmapped) and the unmapped samples.

    Raises if two samples of one file map to the same patient, because a
    biomarker would then be counted twice for that patient.
    """
    if sample_map is None:
        patients = np.array(samples, dtype=object)
        unmapped: list[str] = []
    else:
        patients = np.array([sample_map.get(s) for s in samples], dtype=object)
        unmapped = [s for s, p in zip(samples, patients, strict=True) if p is None]
    mapped = [(s, p) for s, p in zip(samples, patients, strict=True) if p is not None]
    by_patient: dict[str, str] = {}
    for sample, patient in mapped:
        if patient in by_patient:
            raise InputError(
                f"{path}: samples {by_patient[patient]!r} and {sample!r} of the {what} "
                f"both belong to patient {patient!r}. Keep one sample per patient "
                "(for example the primary tumour) by removing the other from the "
                "sample map or the file."
            )
        by_patient[patient] = sample
    return patients, unmapped


@dataclass
class JoinResult:
    """Outcome of joining clinical patients with each molecular input."""

    patients: np.ndarray
    unmatched: dict[str, list[str]] = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)

    def report_lines(self) -> list[str]:
        """Human-readable join report; stays at the site (it lists ids)."""
        lines = [f"joined patients\t{len(self.patients)}"]
        for side, ids in self.unmatched.items():
            lines.append(f"unmatched {side}\t{len(ids)}\t" + ",".join(map(str, ids)))
        lines.extend(f"hint\t{hint}" for hint in self.hints)
        return lines


def _normalise(identifier: str) -> str:
    return identifier.strip().casefold()


def join_patients(
    clinical_ids: np.ndarray, modality_patients: dict[str, np.ndarray]
) -> JoinResult:
    """Patients present in the clinical table and in every molecular input."""
    clinical = [str(p) for p in clinical_ids]
    joined = set(clinical)
    sides: dict[str, set[str]] = {}
    for name, patients in modality_patients.items():
        present = {str(p) for p in patients if p is not None}
        sides[name] = present
        joined &= present
    result = JoinResult(
        patients=np.array([p for p in clinical if p in joined], dtype=object)
    )
    clinical_set = set(clinical)
    result.unmatched["clinical (no molecular data)"] = sorted(clinical_set - joined)
    for name, present in sides.items():
        result.unmatched[f"{name} (no clinical row)"] = sorted(present - clinical_set)
    by_normal = {}
    for p in clinical:
        by_normal.setdefault(_normalise(p), []).append(p)
    for name, present in sides.items():
        for p in sorted(present - clinical_set):
            for candidate in by_normal.get(_normalise(p), []):
                result.hints.append(
                    f"{name} id {p!r} differs from clinical id {candidate!r} only in "
                    "white space or case; ids are matched exactly, so fix one of the "
                    "files or list the pair in the sample map"
                )
    return result
