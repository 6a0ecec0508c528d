"""Kaplan-Meier counts on a coarse time grid, pooled curves, stratified log-rank.

A site never releases an exact event time. Follow-up times are rounded up to a
grid of ``width`` days, and the site releases, per group and grid time, the
number of events and of censorings there. The number at risk at a grid time is
the group's size minus everything released before it, so sums over sites give
the pooled curve exactly as if the coarsened times of all patients had been
pooled.

The log-rank test uses each site's exact times, inside the site: it releases
per group the observed and expected events and their hypergeometric
covariance, and the pooled statistic is the stratified log-rank test.

References
----------
Kaplan, E. L. and Meier, P. (1958). Nonparametric estimation from incomplete
observations. JASA 53, 457-481.
Greenwood, M. (1926). The natural duration of cancer. Reports on Public Health
and Medical Subjects 33.
Mantel, N. (1966). Evaluation of survival data and two new rank order
statistics arising in its consideration. Cancer Chemotherapy Reports 50,
163-170.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


def coarsen(time_days: np.ndarray, width: float) -> np.ndarray:
    """Round follow-up times up to the next multiple of ``width`` days."""
    return np.ceil(np.asarray(time_days, dtype=np.float64) / width) * width


def km_counts(
    time_days: np.ndarray, event: np.ndarray, group: np.ndarray, width: float
) -> pd.DataFrame:
    """Events and censorings per group and grid time (one site).

    Returns columns group, time, events, censored, and n (the group's size),
    with a row only where something happens.
    """
    coarse = coarsen(time_days, width)
    frame = pd.DataFrame(
        {"group": group, "time": coarse, "event": np.asarray(event, int)}
    )
    frame["censored"] = 1 - frame.event
    counts = (
        frame.groupby(["group", "time"], sort=True)
        .agg(events=("event", "sum"), censored=("censored", "sum"))
        .reset_index()
    )
    sizes = frame.groupby("group").size()
    counts["n"] = counts.group.map(sizes)
    return counts


def truncate_at_risk(counts: pd.DataFrame, min_at_risk: int) -> pd.DataFrame:
    """Stop each group's released rows where fewer than ``min_at_risk`` remain.

    The patients still at risk at the first time below the minimum are
    released as censored there, in one count, so no later time point reveals
    the survival of so few patients.
    """
    if min_at_risk <= 1:
        return counts
    out = []
    for _, rows in counts.groupby("group", sort=True):
        rows = rows.sort_values("time")
        before = (rows.events + rows.censored).cumsum().shift(fill_value=0)
        at_risk = rows.n - before
        low = np.flatnonzero(at_risk.to_numpy() < min_at_risk)
        if low.size:
            cut = int(low[0])
            kept = rows.iloc[:cut].copy()
            if cut < len(rows):
                tail = rows.iloc[cut : cut + 1].copy()
                tail["events"] = 0
                tail["censored"] = int(at_risk.iloc[cut])
                kept = pd.concat([kept, tail]) if int(at_risk.iloc[cut]) else kept
            rows = kept
        out.append(rows)
    return pd.concat(out, ignore_index=True) if out else counts.iloc[:0]


def pooled_curve(counts: pd.DataFrame) -> pd.DataFrame:
    """Kaplan-Meier estimate per group from summed counts of every site.

    ``counts`` has columns group, time, events, censored and n (per site and
    group); rows of all sites are pooled. Returns group, time, at_risk,
    events, censored, survival, se (Greenwood), lower and upper (95%, on the
    log(-log) scale, as lifelines computes them).
    """
    out = []
    for group, rows in counts.groupby("group", sort=True):
        total = (
            rows.drop_duplicates(["site", "group"]).n.sum()
            if "site" in rows
            else rows.n.iloc[0]
        )
        summed = (
            rows.groupby("time", sort=True)[["events", "censored"]].sum().reset_index()
        )
        removed = (summed.events + summed.censored).cumsum().shift(fill_value=0)
        summed["at_risk"] = total - removed
        hazard = summed.events / summed.at_risk
        summed["survival"] = np.cumprod(1.0 - hazard)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = summed.events / (summed.at_risk * (summed.at_risk - summed.events))
            greenwood = np.cumsum(terms.replace([np.inf], np.nan).fillna(0.0))
            summed["se"] = summed.survival * np.sqrt(greenwood)
            log_s = np.log(summed.survival)
            v = greenwood / log_s**2
            z = stats.norm.ppf(0.975)
            summed["lower"] = np.exp(-np.exp(np.log(-log_s) + z * np.sqrt(v)))
            summed["upper"] = np.exp(-np.exp(np.log(-log_s) - z * np.sqrt(v)))
        # Before the first event the band is undefined on the log(-log) scale
        # and collapses to 1; after survival reaches 0 it is 0.
        for column in ("lower", "upper"):
            summed[column] = summed[column].where(summed.survival < 1.0, 1.0)
            summed[column] = summed[column].where(summed.survival > 0.0, 0.0)
        summed.insert(0, "group", group)
        out.append(summed)
    return pd.concat(out, ignore_index=True)


def median_survival(curve: pd.DataFrame) -> dict:
    """First grid time at which each group's survival is 0.5 or less (or NaN)."""
    medians = {}
    for group, rows in curve.groupby("group", sort=True):
        below = rows.loc[rows.survival <= 0.5, "time"]
        medians[group] = float(below.iloc[0]) if len(below) else float("nan")
    return medians


@dataclass(frozen=True)
class LogRank:
    """Observed and expected events per group and their covariance."""

    groups: list
    observed: np.ndarray
    expected: np.ndarray
    covariance: np.ndarray


def logrank_parts(time_days, event, group, groups, strata=None) -> LogRank:
    """O, E and the hypergeometric covariance at exact times (within strata)."""
    time_days = np.asarray(time_days, dtype=np.float64)
    event = np.asarray(event, dtype=int)
    group = np.asarray(group)
    k = len(groups)
    index = {g: i for i, g in enumerate(groups)}
    codes = np.array([index[g] for g in group])
    strata = np.zeros(len(time_days)) if strata is None else np.asarray(strata)
    observed = np.zeros(k)
    expected = np.zeros(k)
    covariance = np.zeros((k, k))
    for stratum in np.unique(strata):
        inside = strata == stratum
        t_s = time_days[inside]
        d_s = event[inside]
        c_s = codes[inside]
        for t in np.unique(t_s[d_s == 1]):
            at_risk = t_s >= t
            n = at_risk.sum()
            dying = (t_s == t) & (d_s == 1)
            d = dying.sum()
            n_g = np.bincount(c_s[at_risk], minlength=k).astype(float)
            d_g = np.bincount(c_s[dying], minlength=k).astype(float)
            observed += d_g
            expected += d * n_g / n
            if n > 1:
                factor = d * (n - d) / (n - 1)
                share = n_g / n
                covariance += factor * (np.diag(share) - np.outer(share, share))
    return LogRank(list(groups), observed, expected, covariance)


def logrank_test(parts: list[LogRank]) -> tuple[float, int, float]:
    """Chi-square, degrees of freedom and p-value of the summed parts."""
    observed = sum(p.observed for p in parts)
    expected = sum(p.expected for p in parts)
    covariance = sum(p.covariance for p in parts)
    k = len(observed)
    diff = (observed - expected)[: k - 1]
    block = covariance[: k - 1, : k - 1]
    if k < 2 or np.linalg.matrix_rank(block) == 0:
        return float("nan"), 0, float("nan")
    chi2 = float(diff @ np.linalg.pinv(block) @ diff)
    df = int(np.linalg.matrix_rank(block))
    return chi2, df, float(stats.chi2.sf(chi2, df))
