"""Inverse-variance meta-analysis of per-site estimates, vectorized over biomarkers.

References
----------
DerSimonian, R. and Laird, N. (1986). Meta-analysis in clinical trials.
Controlled Clinical Trials 7, 177-188.
Cochran, W. G. (1954). The combination of estimates from different experiments.
Biometrics 10, 101-129.
Higgins, J. P. T. and Thompson, S. G. (2002). Quantifying heterogeneity in a
meta-analysis. Statistics in Medicine 21, 1539-1558.
Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate.
JRSS B 57, 289-300.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests


def two_sided_p(z: np.ndarray) -> np.ndarray:
    """Two-sided normal p-value of z (NaN stays NaN)."""
    return 2.0 * stats.norm.sf(np.abs(z))


def meta_analysis(
    groups: np.ndarray, estimate: np.ndarray, se: np.ndarray
) -> pd.DataFrame:
    """Fixed-effect and DerSimonian-Laird random-effects pooling per group.

    Parameters
    ----------
    groups : (k,) array
        Group label (biomarker) of each per-site estimate.
    estimate, se : (k,) float arrays
        Per-site log hazard ratio and its standard error; rows with a missing or
        non-positive SE are ignored.

    Returns
    -------
    DataFrame indexed by group with columns n_sites_fit, log_hr_fe, se_fe, p_fe,
    log_hr_re, se_re, p_re, tau2, het_q (Cochran's Q), het_p, i2.
    """
    usable = np.isfinite(estimate) & np.isfinite(se) & (se > 0)
    frame = pd.DataFrame(
        {"group": groups[usable], "y": estimate[usable], "w": 1.0 / se[usable] ** 2}
    )
    frame["wy"] = frame.w * frame.y
    frame["wy2"] = frame.w * frame.y**2
    frame["w2"] = frame.w**2
    sums = frame.groupby("group", sort=False)[["w", "wy", "wy2", "w2"]].sum()
    k = frame.groupby("group", sort=False).size()
    out = pd.DataFrame(index=sums.index)
    out["n_sites_fit"] = k
    out["log_hr_fe"] = sums.wy / sums.w
    out["se_fe"] = np.sqrt(1.0 / sums.w)
    out["p_fe"] = two_sided_p(out.log_hr_fe / out.se_fe)

    q = (sums.wy2 - sums.wy**2 / sums.w).clip(lower=0.0)
    df = k - 1
    c = sums.w - sums.w2 / sums.w
    with np.errstate(divide="ignore", invalid="ignore"):
        tau2 = np.where((df > 0) & (c > 0), np.maximum(0.0, (q - df) / c), 0.0)
        i2 = np.where((df > 0) & (q > 0), np.maximum(0.0, (q - df) / q), np.nan)
    out["tau2"] = tau2
    out["het_q"] = np.where(df > 0, q, np.nan)
    out["het_p"] = np.where(df > 0, stats.chi2.sf(q, np.maximum(df, 1)), np.nan)
    out["i2"] = i2

    frame["w_re"] = 1.0 / (1.0 / frame.w + frame.group.map(out.tau2))
    frame["wy_re"] = frame.w_re * frame.y
    re_sums = frame.groupby("group", sort=False)[["w_re", "wy_re"]].sum()
    out["log_hr_re"] = re_sums.wy_re / re_sums.w_re
    out["se_re"] = np.sqrt(1.0 / re_sums.w_re)
    out["p_re"] = two_sided_p(out.log_hr_re / out.se_re)
    return out


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values; NaN p-values stay NaN and are not counted."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        q[finite] = multipletests(p[finite], method="fdr_bh")[1]
    return q


def genomic_control_lambda(p: np.ndarray) -> float:
    """Median chi-square (1 df) of the p-values over its expected median.

    The chi-square statistic falls as p rises, so its median comes from the
    middle one or two p-values: only those are transformed, which keeps the
    memory of a merge of millions of variants at one copy of the p-values.
    """
    p = np.asarray(p, dtype=np.float64)
    p = p[np.isfinite(p) & (p > 0)]
    if p.size == 0:
        return float("nan")
    half = p.size // 2
    middle = np.partition(p, [half - 1, half] if p.size % 2 == 0 else [half])
    pair = middle[[half - 1, half]] if p.size % 2 == 0 else middle[[half]]
    median = float(np.mean(stats.chi2.isf(pair, 1)))
    return median / float(stats.chi2.ppf(0.5, 1))
