"""Clinical table: patient ids, survival time in days, event, covariates, strata."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from naipo_bio.contract import DAYS_PER_UNIT
from naipo_bio.errors import DataQualityWarning, InputError
from naipo_bio.io.tables import (
    is_missing,
    line_numbers,
    read_text_table,
    require_columns,
)

log = logging.getLogger(__name__)

#: Spellings accepted in a time-unit column, mapped to the canonical unit.
UNIT_ALIASES = {
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "week": "weeks", "weeks": "weeks",
    "mo": "months", "mon": "months", "month": "months", "months": "months",
    "y": "years", "yr": "years", "year": "years", "years": "years",
}  # fmt: skip

MAX_LISTED = 20


@dataclass
class ClinicalData:
    """Analysable patients of one site, in file order.

    Attributes
    ----------
    patient_ids : (n,) object array of str
    time_days : (n,) float64
        Follow-up time in days.
    event : (n,) int8
        1 = event, 0 = censored.
    covariates : DataFrame
        Design columns (numeric covariates, and one 0/1 column per non-reference
        level of each categorical covariate), indexed like ``patient_ids``.
    strata : (n,) object array or None
        Within-site stratum of each patient.
    counts : dict
        Rows read and patients excluded, by reason (aggregate counts only).
    """

    patient_ids: np.ndarray
    time_days: np.ndarray
    event: np.ndarray
    covariates: pd.DataFrame
    strata: np.ndarray | None
    counts: dict[str, int] = field(default_factory=dict)

    def subset(self, keep: np.ndarray) -> ClinicalData:
        keep = np.asarray(keep, dtype=bool)
        return ClinicalData(
            patient_ids=self.patient_ids[keep],
            time_days=self.time_days[keep],
            event=self.event[keep],
            covariates=self.covariates.loc[keep].reset_index(drop=True),
            strata=None if self.strata is None else self.strata[keep],
            counts=dict(self.counts),
        )


def _column(site_clinical: dict[str, Any], role: str) -> str:
    return site_clinical.get("columns", {}).get(role, role)


def _list(values, limit: int = MAX_LISTED) -> str:
    values = [str(v) for v in values]
    text = ", ".join(repr(v) for v in values[:limit])
    if len(values) > limit:
        text += f" and {len(values) - limit} more"
    return text


def read_clinical(
    site_clinical: dict[str, Any], analysis: dict[str, Any]
) -> ClinicalData:
    """Read and check one site's clinical table.

    Rules: a negative time is an error listing the patients; a missing time or
    event excludes the patient (counted); a time of 0 is kept and flagged; the
    time unit comes from the configuration or a per-row unit column, and every
    time is converted to days (1 month = 30.4375 days, 1 year = 365.25 days).
    """
    path = Path(site_clinical["path"])
    frame = read_text_table(path, "clinical")
    covariates = analysis.get("covariates", [])
    roles = {
        role: _column(site_clinical, role) for role in ("patient_id", "time", "event")
    }
    if site_clinical.get("time_unit") is None:
        roles["time_unit"] = _column(site_clinical, "time_unit")
    for cov in covariates:
        roles[cov["name"]] = _column(site_clinical, cov["name"])
    for name in analysis.get("stratify_by", []):
        roles[name] = _column(site_clinical, name)
    require_columns(frame, roles, path, "clinical")

    counts = {"rows": int(frame.shape[0])}
    ids = _patient_ids(frame[roles["patient_id"]], path)
    keep = np.ones(frame.shape[0], dtype=bool)

    event, event_missing = _parse_event(
        frame[roles["event"]], site_clinical.get("event_values", {}), path, ids
    )
    time_days, time_missing = _parse_time(frame, roles, site_clinical, path, ids)
    counts["excluded_missing_time"] = int(time_missing.sum())
    counts["excluded_missing_event"] = int((event_missing & ~time_missing).sum())
    keep &= ~time_missing & ~event_missing

    design, cov_missing = _covariate_design(frame, roles, covariates, path, ids)
    counts["excluded_missing_covariate"] = int((cov_missing & keep).sum())
    keep &= ~cov_missing

    strata = None
    if analysis.get("stratify_by"):
        parts = []
        strata_missing = np.zeros(frame.shape[0], dtype=bool)
        for name in analysis["stratify_by"]:
            column = frame[roles[name]]
            strata_missing |= is_missing(column).to_numpy()
            parts.append(column.str.strip())
        strata = pd.Series(["|".join(v) for v in zip(*parts, strict=True)]).to_numpy(
            dtype=object
        )
        counts["excluded_missing_stratum"] = int((strata_missing & keep).sum())
        keep &= ~strata_missing

    zero = keep & (time_days == 0)
    counts["zero_times"] = int(zero.sum())
    if zero.any():
        warnings.warn(
            f"{path}: {int(zero.sum())} patient(s) have follow-up time 0 "
            f"({_list(ids[zero])}). They are kept; check that 0 is not a "
            "placeholder for an unknown time.",
            DataQualityWarning,
            stacklevel=2,
        )
    excluded = int((~keep).sum())
    if excluded:
        log.warning(
            "%s: %d of %d patients excluded (missing time %d, missing event %d, "
            "missing covariate %d).", path, excluded, frame.shape[0],
            counts["excluded_missing_time"], counts["excluded_missing_event"],
            counts["excluded_missing_covariate"],
        )  # fmt: skip
    counts["patients"] = int(keep.sum())
    data = ClinicalData(
        patient_ids=ids,
        time_days=time_days,
        event=event,
        covariates=design,
        strata=strata,
        counts=counts,
    )
    return data.subset(keep)


def _patient_ids(column: pd.Series, path: Path) -> np.ndarray:
    missing = is_missing(column).to_numpy()
    if missing.any():
        rows = line_numbers(column.index[missing])
        raise InputError(
            f"{path}: patient id is missing on line(s) {rows[:MAX_LISTED]}. Every "
            "row needs an id; remove the rows or fill in the ids."
        )
    duplicated = column[column.duplicated(keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        rows = line_numbers(duplicated.index[duplicated == first])
        raise InputError(
            f"{path}: patient id {first!r} appears on lines {rows} "
            f"({duplicated.nunique()} id(s) repeated in all). Keep one row per "
            "patient."
        )
    return column.to_numpy(dtype=object)


def _parse_event(
    column: pd.Series, mapping: dict[str, int], path: Path, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    text = column.str.strip()
    missing = is_missing(column).to_numpy()
    flags = [k for k in mapping if isinstance(k, bool)]
    if flags:
        raise InputError(
            f"{path}: event_values has the key(s) {flags}: YAML reads unquoted yes, "
            "no, on, off, true and false as booleans. Quote them in the config, "
            "e.g. event_values: {'yes': 1, 'no': 0}."
        )
    if mapping:
        mapped = text.map({str(k): int(v) for k, v in mapping.items()})
        bad = mapped.isna().to_numpy() & ~missing
        allowed = sorted(mapping)
        fix = f"Add the value to event_values (which maps {allowed})."
    else:
        mapped = text.map({"0": 0, "1": 1, "0.0": 0, "1.0": 1})
        bad = mapped.isna().to_numpy() & ~missing
        values = set(text[bad])
        fix = "Events must be 0 (censored) or 1 (event)."
        if values <= {"1", "2"} and values:
            fix += (
                " The values look like R's 1/2 coding (1 = censored, 2 = event): "
                "map them with event_values: {'1': 0, '2': 1}."
            )
        else:
            fix += " Map other codings with event_values, e.g. {dead: 1, alive: 0}."
    if bad.any():
        values = sorted(set(text[bad]))
        raise InputError(
            f"{path}: invalid event value(s) {_list(values)} for patient(s) "
            f"{_list(ids[bad])} (line(s) {line_numbers(column.index[bad])[:5]}). {fix}"
        )
    event = mapped.fillna(0).to_numpy().astype(np.int8)
    return event, missing


def _parse_time(
    frame: pd.DataFrame, roles: dict[str, str], site_clinical: dict, path: Path,
    ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    column = frame[roles["time"]]
    missing = is_missing(column).to_numpy()
    numeric = pd.to_numeric(column.str.strip().where(~missing), errors="coerce")
    bad = numeric.isna().to_numpy() & ~missing
    if bad.any():
        raise InputError(
            f"{path}: time value(s) {_list(column[bad])} for patient(s) "
            f"{_list(ids[bad])} are not numbers. Give times as numbers and the unit "
            "separately."
        )
    values = numeric.to_numpy(dtype=np.float64)
    infinite = np.isinf(values)
    negative = (values < 0) & ~missing
    if negative.any() or infinite.any():
        wrong = negative | infinite
        raise InputError(
            f"{path}: {int(wrong.sum())} patient(s) have a negative or infinite "
            f"follow-up time: {_list(ids[wrong])} (values {_list(column[wrong])}). "
            "Survival times must be >= 0; correct or remove these rows."
        )
    unit = site_clinical.get("time_unit")
    unit_column = _column(site_clinical, "time_unit")
    if unit is not None and unit_column in frame.columns:
        declared = frame[unit_column].str.strip().str.lower().map(UNIT_ALIASES)
        other = (declared != unit).to_numpy() & ~missing
        if other.any():
            raise InputError(
                f"{path}: the configuration declares time_unit: {unit}, but column "
                f"{unit_column!r} gives other units for patient(s) {_list(ids[other])} "
                f"({_list(sorted(set(frame[unit_column][other])))}). Remove time_unit "
                "from the configuration so that the column's units are used."
            )
    if unit is not None:
        factor = np.full(values.shape, DAYS_PER_UNIT[unit])
    else:
        unit_text = frame[roles["time_unit"]].str.strip().str.lower()
        canonical = unit_text.map(UNIT_ALIASES)
        unknown = canonical.isna().to_numpy() & ~missing
        if unknown.any():
            raise InputError(
                f"{path}: unknown time unit(s) "
                f"{_list(sorted(set(unit_text[unknown])))} "
                f"for patient(s) {_list(ids[unknown])}. Use days, weeks, months or "
                "years."
            )
        factor = canonical.map(DAYS_PER_UNIT).fillna(np.nan).to_numpy(dtype=np.float64)
    time_days = values * factor
    if missing.any():
        warnings.warn(
            f"{path}: {int(missing.sum())} patient(s) have no follow-up time and are "
            f"excluded: {_list(ids[missing])}.",
            DataQualityWarning,
            stacklevel=3,
        )
    return np.where(missing, 0.0, time_days), missing


def _covariate_design(
    frame: pd.DataFrame, roles: dict[str, str], covariates: list[dict], path: Path,
    ids: np.ndarray,
) -> tuple[pd.DataFrame, np.ndarray]:  # fmt: skip
    """Numeric covariates as they are, categorical ones as 0/1 indicator columns."""
    missing_any = np.zeros(frame.shape[0], dtype=bool)
    columns: dict[str, np.ndarray] = {}
    for cov in covariates:
        name = cov["name"]
        column = frame[roles[name]]
        missing = is_missing(column).to_numpy()
        missing_any |= missing
        if cov["type"] == "numeric":
            numeric = pd.to_numeric(column.str.strip().where(~missing), errors="coerce")
            bad = ~np.isfinite(numeric.to_numpy(dtype=np.float64)) & ~missing
            if bad.any():
                raise InputError(
                    f"{path}: covariate {name!r} (column {roles[name]!r}) has "
                    f"non-numeric or infinite value(s) {_list(column[bad])} for "
                    f"patient(s) {_list(ids[bad])}. Declare it categorical or fix "
                    "the values (NA where unknown)."
                )
            columns[name] = numeric.fillna(0.0).to_numpy(dtype=np.float64)
        else:
            levels = column.str.strip()
            observed = sorted(set(levels[~missing]))
            reference = cov.get("reference")
            if reference is None:
                reference = observed[0] if observed else None
            elif observed and reference not in observed:
                raise InputError(
                    f"{path}: covariate {name!r} (column {roles[name]!r}) declares "
                    f"the reference level {reference!r}, which no patient has; the "
                    f"levels present are {_list(pd.Series(observed))}. Set "
                    "analysis.covariates reference to one of them (the same at "
                    "every site), or recode the column."
                )
            for level in observed:
                if level == reference:
                    continue
                columns[f"{name}[{level}]"] = (levels == level).to_numpy(np.float64)
    design = pd.DataFrame(columns, index=range(frame.shape[0]))
    return design, missing_any
