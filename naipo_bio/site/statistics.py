"""Per-biomarker statistics of one site: counts, score U and information V, fits.

Missing biomarker values (NaN) exclude the patient for that biomarker only. The
null model is refitted on the remaining patients, once per distinct pattern of
missing values, so U and V stay exact score statistics of the model fitted to
the patients that have the value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from naipo_bio.contract import (
    CARRIER_KINDS,
    STATUS_CONSTANT,
    STATUS_NO_CARRIERS,
    STATUS_NO_EVENTS,
    STATUS_OK,
)
from naipo_bio.errors import InputError
from naipo_bio.stats import cox

log = logging.getLogger(__name__)

#: V below this (relative to the largest V of the kind) means the covariates
#: explain the biomarker completely at this site.
RELATIVE_V_FLOOR = 1e-10

#: Column of the internal count used by the disclosure policy.
INFORMATIVE = "_n_informative"


@dataclass
class BiomarkerData:
    """One kind of biomarker, aligned to the site's analysed patients.

    ``values`` is (m, n) with columns in the patient order of the design's input.
    """

    kind: str
    ids: list[str]
    genes: list[str]
    values: np.ndarray


def biomarker_table(
    design: cox.SurvivalDesign, null: cox.NullModel, data: BiomarkerData, fits: bool
) -> pd.DataFrame:
    """Counts, U, V and (optionally) per-site Cox fits of every biomarker."""
    G = np.asarray(data.values, dtype=np.float64)
    m, n = G.shape
    event = np.empty(n, dtype=np.float64)
    event[design.order] = design.event
    missing = np.isnan(G)
    present = ~missing
    table = pd.DataFrame(
        {
            "biomarker_id": data.ids,
            "gene": data.genes,
            "status": STATUS_OK,
            "reason": None,
            "n": present.sum(axis=1),
            "n_events": (present * event).sum(axis=1).astype(np.int64),
        }
    )
    binary = data.kind in CARRIER_KINDS
    filled = np.where(missing, 0.0, G)
    # Internal to the site (never released): how many patients differ from the
    # biomarker's most common value. The disclosure policy withholds a biomarker
    # when too few do, because its sums would then reveal their values.
    table[INFORMATIVE] = _count_off_mode(G, missing)
    if binary:
        carrier = (filled > 0) & present
        table["n_carriers"] = carrier.sum(axis=1)
        table["n_carrier_events"] = (carrier * event).sum(axis=1).astype(np.int64)
    else:
        table["n_carriers"] = pd.array([pd.NA] * m, dtype="Int64")
        table["n_carrier_events"] = pd.array([pd.NA] * m, dtype="Int64")

    with np.errstate(invalid="ignore"):
        spread = np.nanmax(G, axis=1, initial=-np.inf) - np.nanmin(
            G, axis=1, initial=np.inf
        )
    constant = ~(spread > 0)
    status = np.full(m, STATUS_OK, dtype=object)
    reason = np.full(m, None, dtype=object)
    status[constant] = STATUS_CONSTANT
    reason[constant] = "the biomarker takes one value at this site"
    if binary:
        none = table["n_carriers"].to_numpy() == 0
        status[none] = STATUS_NO_CARRIERS
        reason[none] = "no carriers at this site"
    no_events = table["n_events"].to_numpy() == 0
    status[no_events] = STATUS_NO_EVENTS
    reason[no_events] = "no events among the patients with a value"

    u = np.zeros(m)
    v = np.zeros(m)
    log_hr = np.full(m, np.nan)
    se = np.full(m, np.nan)
    fit_status = np.full(m, "not_fitted", dtype=object)
    for rows, keep in _missing_patterns(missing, status == STATUS_OK):
        sub_design, sub_null = design, null
        if keep is not None:
            try:
                sub_design, sub_null = _refit_null(design, keep)
            except InputError as exc:
                status[rows] = STATUS_CONSTANT
                reason[rows] = f"null model failed on the patients with values: {exc}"
                continue
        block = G[rows] if keep is None else G[rows][:, keep]
        u[rows], v[rows] = cox.score_statistics(sub_design, sub_null, block)
        if fits:
            result = cox.fit_biomarkers(sub_design, sub_null, block)
            # Monotone likelihood: the estimate has run off towards +/- infinity,
            # so only its direction means anything, and its Wald SE means nothing.
            infinite = result.status == "infinite"
            log_hr[rows] = np.where(
                infinite, np.sign(result.log_hr) * np.inf, result.log_hr
            )
            se[rows] = np.where(infinite, np.nan, result.se)
            fit_status[rows] = result.status

    ok = status == STATUS_OK
    floor = RELATIVE_V_FLOOR * max(float(v[ok].max()) if ok.any() else 0.0, 1e-300)
    explained = ok & (v <= floor)
    status[explained] = STATUS_CONSTANT
    reason[explained] = "explained completely by the covariates at this site"
    not_ok = status != STATUS_OK
    u[not_ok] = 0.0
    v[not_ok] = 0.0
    log_hr[not_ok] = np.nan
    se[not_ok] = np.nan
    fit_status[not_ok] = "not_fitted"

    table["status"] = status
    table["reason"] = reason
    table["u"] = u
    table["v"] = v
    table["log_hr"] = log_hr
    table["se"] = se
    table["fit_status"] = fit_status
    if binary:
        table["sum_x"] = np.nan
        table["sum_x2"] = np.nan
    else:
        table["sum_x"] = filled.sum(axis=1)
        table["sum_x2"] = (filled * filled).sum(axis=1)
    _log_fit_problems(table, data.kind)
    return table


def _count_off_mode(G: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Per row, the number of present values that differ from the row's mode."""
    counts = np.zeros(G.shape[0], dtype=np.int64)
    for row in range(G.shape[0]):
        values = G[row, ~missing[row]]
        if values.size == 0:
            continue
        _, frequency = np.unique(values, return_counts=True)
        counts[row] = values.size - frequency.max()
    return counts


def _missing_patterns(missing: np.ndarray, eligible: np.ndarray):
    """Yield (rows, keep) per distinct missing-value pattern among eligible rows;
    ``keep`` is None for rows with no missing value."""
    complete = eligible & ~missing.any(axis=1)
    if complete.any():
        yield np.flatnonzero(complete), None
    partial = np.flatnonzero(eligible & ~complete)
    groups: dict[bytes, list[int]] = {}
    for row in partial:
        groups.setdefault(np.packbits(missing[row]).tobytes(), []).append(int(row))
    for rows in groups.values():
        yield np.array(rows), ~missing[rows[0]]


def _refit_null(design: cox.SurvivalDesign, keep: np.ndarray):
    sub = design.subset(keep)
    sub, _ = sub.without_constant_covariates()
    return sub, cox.fit_null(sub)


def _log_fit_problems(table: pd.DataFrame, kind: str) -> None:
    for label in ("infinite", "not_converged", "singular"):
        hit = table.loc[table["fit_status"] == label, "biomarker_id"]
        if len(hit):
            log.info(
                "%s: %d per-site fit(s) with status %s (first: %s); their score "
                "statistics are still valid and are released.",
                kind, len(hit), label, ", ".join(hit.head(5)),
            )  # fmt: skip
