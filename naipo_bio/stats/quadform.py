"""Tail probabilities of weighted sums of independent chi-square(1) variables.

Q = sum_j lambda_j chi2_1 is the null distribution of SKAT-type statistics.
The upper tail is computed by Imhof's numerical inversion of the
characteristic function; where that loses relative accuracy (p below 1e-10)
or the integral fails, Kuonen's saddlepoint approximation is used.

References
----------
Imhof, J. P. (1961). Computing the distribution of quadratic forms in normal
variables. Biometrika 48, 419-426.
Kuonen, D. (1999). Saddlepoint approximations for distributions of quadratic
forms in normal variables. Biometrika 86, 929-935.
Liu, H., Tang, Y. and Zhang, H. H. (2009). A new chi-square approximation to
the distribution of non-negative definite quadratic forms in non-central
normal variables. Computational Statistics & Data Analysis 53, 853-856.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import integrate, stats

#: Below this Imhof p-value the saddlepoint approximation takes over: the
#: integral's absolute error (about 1e-13) is no longer small relative to p.
IMHOF_FLOOR = 1e-10


def _positive(lambdas: np.ndarray) -> np.ndarray:
    lambdas = np.asarray(lambdas, dtype=np.float64)
    top = lambdas.max() if lambdas.size else 0.0
    return lambdas[lambdas > top * 1e-10] if top > 0 else lambdas[:0]


def imhof_sf(q: float, lambdas: np.ndarray) -> float:
    """P(sum lambda_j chi2_1 > q) by Imhof's integral.

    The integrand sin(theta(u)) / (u rho(u)) oscillates with period 4 pi / q and
    decays only like u^(-1 - k/2). Writing theta(u) = phi(u) - q u / 2, with
    phi(u) = sum arctan(lambda_j u) / 2 slowly varying, turns the tail beyond
    ``split`` into two Fourier integrals of smooth decaying functions, which
    QUADPACK's QAWF routine integrates accurately.
    """
    lam = _positive(lambdas)

    def phi(u):
        return 0.5 * np.sum(np.arctan(lam * u))

    def rho(u):
        return np.exp(0.25 * np.sum(np.log1p((lam * u) ** 2)))

    def integrand(u: float) -> float:
        if u == 0.0:
            return 0.5 * (np.sum(lam) - q)
        return np.sin(phi(u) - 0.5 * q * u) / (u * rho(u))

    split = 4.0 / lam.min() if q <= 0 else max(4.0 / lam.min(), 20.0 * np.pi / q)
    split = min(split, 1e6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        head, _ = integrate.quad(
            integrand, 0.0, split, limit=2000, epsabs=1e-14, epsrel=1e-12
        )
        if q > 0:
            cos_part, _ = integrate.quad(
                lambda u: np.sin(phi(u)) / (u * rho(u)), split, np.inf,
                weight="cos", wvar=0.5 * q, limlst=200, epsabs=1e-15,
            )  # fmt: skip
            sin_part, _ = integrate.quad(
                lambda u: np.cos(phi(u)) / (u * rho(u)), split, np.inf,
                weight="sin", wvar=0.5 * q, limlst=200, epsabs=1e-15,
            )  # fmt: skip
            tail = cos_part - sin_part
        else:
            tail, _ = integrate.quad(integrand, split, np.inf, limit=2000, epsabs=1e-14)
    return 0.5 + (head + tail) / np.pi


def saddlepoint_sf(q, lambdas: np.ndarray):
    """P(sum lambda_j chi2_1 > q) by Kuonen's saddlepoint approximation.

    Vectorized over ``q``: the saddlepoint equation K'(t) = q is solved by
    safeguarded Newton steps for all q at once.
    """
    lam = _positive(lambdas)
    q_arr = np.atleast_1d(np.asarray(q, dtype=np.float64))
    out = np.ones(q_arr.shape)
    positive = q_arr > 0
    if lam.size == 0 or not positive.any():
        return out if np.ndim(q) else float(out[0])
    x = q_arr[positive]
    upper = 1.0 / (2.0 * lam.max())
    lower = np.full(x.shape, -lam.size / (2.0 * x.min()) - 1.0)

    def first(t):
        return np.sum(lam / (1.0 - 2.0 * t[:, None] * lam), axis=1)

    def second(t):
        return np.sum(2.0 * lam**2 / (1.0 - 2.0 * t[:, None] * lam) ** 2, axis=1)

    while np.any(first(lower) > x):
        lower = np.where(first(lower) > x, lower * 2.0, lower)
    high = np.full(x.shape, upper)
    low = lower.copy()
    t = np.clip(0.5 * (low + high), low, high * (1 - 1e-12))
    for _ in range(200):
        f = first(t) - x
        low = np.where(f < 0, t, low)
        high = np.where(f > 0, t, high)
        step = t - f / second(t)
        inside = (step > low) & (step < high)
        t_new = np.where(inside, step, 0.5 * (low + high))
        if np.all(np.abs(t_new - t) <= 1e-15 * np.maximum(1.0, np.abs(t))):
            t = t_new
            break
        t = t_new
    cumulant = -0.5 * np.sum(np.log1p(-2.0 * t[:, None] * lam), axis=1)
    w = np.sign(t) * np.sqrt(np.maximum(2.0 * (t * x - cumulant), 0.0))
    v = t * np.sqrt(second(t))
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected = w + np.log(v / w) / w
    result = np.where(
        (np.abs(w) < 1e-6) | (np.abs(v) < 1e-12),
        stats.norm.sf(w),
        stats.norm.sf(corrected),
    )
    out[positive] = result
    return out if np.ndim(q) else float(out[0])


#: Imhof's integral is used where the saddlepoint tail is below this; above it
#: the saddlepoint (within a few percent there) is kept, to save time.
EXACT_BELOW = 0.1


def mixture_sf(q: float, lambdas: np.ndarray) -> float:
    """P(sum lambda_j chi2_1 > q).

    Exact chi-square tails for one or equal weights; Imhof's integral where the
    tail is below ``EXACT_BELOW``; Kuonen's saddlepoint above that and below
    ``IMHOF_FLOOR``.
    """
    lam = _positive(lambdas)
    if lam.size == 0:
        return 1.0
    if np.allclose(lam, lam[0], rtol=1e-10):
        return float(stats.chi2.sf(q / lam[0], lam.size))
    approximate = saddlepoint_sf(q, lam)
    if approximate >= EXACT_BELOW:
        return float(approximate)
    p = imhof_sf(q, lam)
    if not np.isfinite(p) or p < IMHOF_FLOOR or p > 1.0:
        return float(min(1.0, approximate))
    return float(p)


def liu_parameters(lambdas: np.ndarray) -> tuple[float, float, float]:
    """Mean, variance and chi-square df of Liu et al.'s approximation (central
    case, as SKAT uses it): Q ~ mu + sigma (chi2_df - df) / sqrt(2 df)."""
    lam = _positive(lambdas)
    c1, c2, c3, c4 = (np.sum(lam**k) for k in (1, 2, 3, 4))
    s1 = c3 / c2**1.5
    s2 = c4 / c2**2
    df = 1.0 / s2 if s1**2 > s2 else 1.0 / s1**2
    return c1, 2.0 * c2, df
