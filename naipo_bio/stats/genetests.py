"""Gene-level tests from summed score vectors and covariance blocks.

With U the pooled score vector of a gene's variants, V its covariance and w the
variant weights (Beta(1, 25) density at the pooled MAF, as SKAT does):

- burden: (w'U)^2 / (w'Vw), chi-square with 1 df;
- SKAT: Q = sum_j (w_j U_j)^2, a mixture of chi-square(1) with the eigenvalues
  of W V W as weights;
- SKAT-O: the minimum p-value over Q_rho = (1 - rho) Q_SKAT + rho (w'U)^2 on a
  grid of rho, with its p-value from the one-dimensional integral of Lee et al.

References
----------
Wu, M. C. et al. (2011). Rare-variant association testing for sequencing data
with the sequence kernel association test. AJHG 89, 82-93.
Lee, S., Wu, M. C. and Lin, X. (2012). Optimal tests for rare variant effects in
sequencing association studies. Biostatistics 13, 762-775.
Lee, S. et al. (2013). General framework for meta-analysis of rare variants in
sequencing association studies. AJHG 93, 42-53 (MetaSKAT: the same tests from
summed scores and covariances).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from naipo_bio.stats.quadform import liu_parameters, mixture_sf, saddlepoint_sf

#: rho grid of SKAT-O (the SKAT package's default; rho = 1 is used as 0.999).
RHO_GRID = (0.0, 0.01, 0.04, 0.09, 0.16, 0.25, 0.5, 1.0)

#: Gauss-Legendre nodes of the SKAT-O integral.
GAUSS_NODES = 96

#: Below this minimum p over the rho grid, SKAT-O's integral uses exact tails.
PRECISE_BELOW = 0.01


def beta_weights(maf: np.ndarray, a: float = 1.0, b: float = 25.0) -> np.ndarray:
    """Variant weights: the Beta(a, b) density at each MAF."""
    return stats.beta.pdf(np.asarray(maf, dtype=np.float64), a, b)


@dataclass(frozen=True)
class GeneTestResult:
    burden_stat: float
    burden_p: float
    skat_stat: float
    skat_p: float
    skato_p: float
    skato_rho: float


def _eigenvalues(matrix: np.ndarray) -> np.ndarray:
    values = np.linalg.eigvalsh((matrix + matrix.T) / 2.0)
    return (
        values[values > values.max() * 1e-10]
        if values.size and values.max() > 0
        else values[:0]
    )


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    values = np.clip(values, 0.0, None)
    return (vectors * np.sqrt(values)) @ vectors.T


def gene_tests(U: np.ndarray, V: np.ndarray, weights: np.ndarray) -> GeneTestResult:
    """Burden, SKAT and SKAT-O of one gene."""
    U = np.asarray(U, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    S = w * U
    Sigma = V * np.outer(w, w)
    total = float(Sigma.sum())
    burden = float(S.sum() ** 2 / total) if total > 0 else np.nan
    burden_p = float(stats.chi2.sf(burden, 1)) if total > 0 else np.nan
    skat_stat = float(S @ S)
    lam = _eigenvalues(Sigma)
    skat_p = mixture_sf(skat_stat, lam) if lam.size else np.nan
    if lam.size == 0 or total <= 0:
        return GeneTestResult(burden, burden_p, skat_stat, skat_p, np.nan, np.nan)
    skato_p, rho = _skat_o(S, Sigma)
    return GeneTestResult(burden, burden_p, skat_stat, skat_p, skato_p, rho)


def _skat_o(S: np.ndarray, Sigma: np.ndarray) -> tuple[float, float]:
    k = S.size
    rhos = np.minimum(np.array(RHO_GRID), 0.999)
    root = _sqrt_psd(Sigma)
    ones = np.ones(k)
    q_values = (1.0 - rhos) * (S @ S) + rhos * S.sum() ** 2
    lambdas = []
    p_values = np.empty(rhos.size)
    for i, rho in enumerate(rhos):
        kernel = (1.0 - rho) * np.eye(k) + rho * np.outer(ones, ones)
        lam = _eigenvalues(root @ kernel @ root)
        lambdas.append(lam)
        p_values[i] = mixture_sf(q_values[i], lam)
    best = int(np.argmin(p_values))
    p_min = float(p_values[best])
    if k == 1:
        return p_min, float(RHO_GRID[best])

    # Quantile of each Q_rho at p_min, by Liu's approximation (as SKAT-O does).
    q_min = np.empty(rhos.size)
    for i, lam in enumerate(lambdas):
        mu, var, df = liu_parameters(lam)
        q_min[i] = (stats.chi2.isf(p_min, df) - df) / np.sqrt(2 * df) * np.sqrt(
            var
        ) + mu

    # Decompose root = mean part + residual part (Lee et al. 2012, section 3).
    z_mean = root.mean(axis=1)
    z2 = float(z_mean @ z_mean)
    coefficient = (z_mean @ root) / z2
    part1 = np.outer(z_mean, coefficient)
    part2 = root - part1
    residual = part2.T @ part2
    lam_res = _eigenvalues(residual)
    mu_q = float(lam_res.sum())
    var_cross = 4.0 * float(np.sum((part1.T @ part1) * residual))
    var_q = 2.0 * float(np.sum(lam_res**2)) + var_cross
    tau = (k**2 * rhos + (1.0 - rhos) * np.sum(coefficient**2)) * z2
    scale = np.sqrt(var_q - var_cross) / np.sqrt(var_q) if var_q > 0 else 1.0

    # P(min p > p_min) = E over x ~ chi2_1 of P(residual part <= bound(x)).
    # With x = s^2 the chi2_1 density's singularity at 0 disappears, and a
    # fixed Gauss-Legendre rule on s in [0, sqrt(40)] gives the integral. The
    # inner tail uses Imhof's integral where the result matters (small p_min)
    # and the faster saddlepoint approximation elsewhere.
    nodes, node_weights = np.polynomial.legendre.leggauss(GAUSS_NODES)
    s_max = np.sqrt(40.0)
    s_values = 0.5 * s_max * (nodes + 1.0)
    x = s_values**2
    bound = np.min(
        (q_min[:, None] - tau[:, None] * x[None, :]) / (1.0 - rhos[:, None]), axis=0
    )
    adjusted = (bound - mu_q) * scale + mu_q
    tail = np.ones(x.shape)
    finite = bound <= mu_q * 1e4
    tail[~finite] = 0.0
    if lam_res.size and finite.any():
        if p_min < PRECISE_BELOW:
            tail[finite] = [mixture_sf(q, lam_res) for q in adjusted[finite]]
        else:
            tail[finite] = saddlepoint_sf(adjusted[finite], lam_res)
    density = 2.0 * np.exp(-0.5 * x) / np.sqrt(2.0 * np.pi)
    value = (
        0.5
        * s_max
        * float(np.sum(node_weights * (1.0 - np.minimum(tail, 1.0)) * density))
    )
    p = 1.0 - value
    # The integral cannot be more precise than about 1e-10; Bonferroni over the
    # grid bounds the p-value from above.
    p = min(max(p, p_min), p_min * rhos.size, 1.0)
    return float(p), float(RHO_GRID[best])
