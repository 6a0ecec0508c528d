"""Plain NumPy versions of the kernels, written from the risk-set definitions.

They loop over event times and build each risk set as a boolean mask, so they
cost O(n x events) per biomarker. Tests compare the numba kernels with them;
nothing else uses them.
"""

from __future__ import annotations

import numpy as np


def score_information(
    g: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray,
    w: np.ndarray,
    X: np.ndarray,
    efron: bool = False,
) -> tuple[float, float]:
    """U and efficient V of biomarker ``g`` at beta = 0, given null weights ``w``."""
    g = np.asarray(g, dtype=np.float64)
    p = X.shape[1]
    u = 0.0
    i_gg = 0.0
    i_gx = np.zeros(p)
    i_xx = np.zeros((p, p))
    for stratum in np.unique(strata):
        in_stratum = strata == stratum
        event_times = np.unique(time[in_stratum & (event == 1)])
        for t in event_times:
            risk = in_stratum & (time >= t)
            dying = in_stratum & (time == t) & (event == 1)
            d = int(dying.sum())
            u += g[dying].sum()
            # Efron: d terms, the r-th with the dying patients' weight reduced by
            # r/d; Breslow: one term counted d times.
            terms = [(r / d, 1.0) for r in range(d)] if efron else [(0.0, float(d))]
            for f, weight in terms:
                wr = w * (risk - f * dying)
                s0 = wr.sum()
                mean_g = (wr * g).sum() / s0
                mean_x = (wr[:, None] * X).sum(axis=0) / s0
                cov_gg = (wr * g * g).sum() / s0 - mean_g**2
                cov_gx = (wr[:, None] * g[:, None] * X).sum(
                    axis=0
                ) / s0 - mean_g * mean_x
                cov_xx = (wr[:, None, None] * X[:, :, None] * X[:, None, :]).sum(
                    axis=0
                ) / s0 - np.outer(mean_x, mean_x)
                u -= weight * mean_g
                i_gg += weight * cov_gg
                i_gx += weight * cov_gx
                i_xx += weight * cov_xx
    if p:
        v = i_gg - i_gx @ np.linalg.solve(i_xx, i_gx)
    else:
        v = i_gg
    return float(u), float(v)
