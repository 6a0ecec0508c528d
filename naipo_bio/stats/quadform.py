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

import numba
import numpy as np
from scipy import LowLevelCallable, integrate, stats

#: Below this Imhof p-value the saddlepoint approximation takes over: the
#: integral's absolute error (about 1e-13) is no longer small relative to p.
IMHOF_FLOOR = 1e-10


def _positive(lambdas: np.ndarray) -> np.ndarray:
    lambdas = np.asarray(lambdas, dtype=np.float64)
    top = lambdas.max() if lambdas.size else 0.0
    return lambdas[lambdas > top * 1e-10] if top > 0 else lambdas[:0]


def _imhof_callbacks():
    """C callbacks of the three Imhof integrands for QUADPACK.

    Each has the ``double f(int n, double *x)`` signature of scipy's
    LowLevelCallable: x[0] is u, x[1] is q, x[2:n] are the weights lambda.
    """
    import math

    from numba import carray, cfunc, types

    signature = types.double(types.intc, types.CPointer(types.double))

    def phase_and_scale(u, lam):
        phi = 0.0
        log_rho = 0.0
        for value in lam:
            phi += math.atan(value * u)
            log_rho += math.log1p((value * u) ** 2)
        return 0.5 * phi, math.exp(0.25 * log_rho)

    phase_and_scale = numba.njit(phase_and_scale)

    @cfunc(signature)
    def head(n, x):
        args = carray(x, n)
        u = args[0]
        q = args[1]
        lam = args[2:]
        if u == 0.0:
            return 0.5 * (np.sum(lam) - q)
        phi, rho = phase_and_scale(u, lam)
        return math.sin(phi - 0.5 * q * u) / (u * rho)

    @cfunc(signature)
    def sine_part(n, x):
        args = carray(x, n)
        phi, rho = phase_and_scale(args[0], args[2:])
        return math.sin(phi) / (args[0] * rho)

    @cfunc(signature)
    def cosine_part(n, x):
        args = carray(x, n)
        phi, rho = phase_and_scale(args[0], args[2:])
        return math.cos(phi) / (args[0] * rho)

    return tuple(LowLevelCallable(f.ctypes) for f in (head, sine_part, cosine_part))


_CALLBACKS = None


def imhof_sf(q: float, lambdas: np.ndarray) -> float:
    """P(sum lambda_j chi2_1 > q) by Imhof's integral.

    The integrand sin(theta(u)) / (u rho(u)) oscillates with period 4 pi / q and
    decays only like u^(-1 - k/2). Writing theta(u) = phi(u) - q u / 2, with
    phi(u) = sum arctan(lambda_j u) / 2 slowly varying, turns the tail beyond
    ``split`` into two Fourier integrals of smooth decaying functions, which
    QUADPACK's QAWF routine integrates accurately and fast.
    """
    global _CALLBACKS
    if _CALLBACKS is None:
        _CALLBACKS = _imhof_callbacks()
    head, sine_part, cosine_part = _CALLBACKS
    lam = _positive(lambdas)
    if q <= 0 or lam.size == 0:
        return 1.0
    # The tail is unchanged when q and every weight are divided by one constant;
    # scaling the largest weight to 1 keeps the integrands and the oscillation
    # frequency of order 1, where QUADPACK's tolerances are attainable.
    scale = lam.max()
    lam = lam / scale
    q = q / scale
    args = (float(q), *map(float, lam))
    # The decomposition holds for every u > 0; only cos(phi) / (u rho) grows
    # like 1 / u near 0, so the plain integral covers [0, split], which is
    # shorter than half an oscillation of cos(q u / 2).
    split = min(1.0, np.pi / q)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        start, _ = integrate.quad(
            head, 0.0, split, args=args, limit=200, epsabs=1e-14, epsrel=1e-12
        )
        cos_part, _ = integrate.quad(
            sine_part, split, np.inf, args=args, weight="cos", wvar=0.5 * q,
            limlst=200, epsabs=1e-14,
        )  # fmt: skip
        sin_part, _ = integrate.quad(
            cosine_part, split, np.inf, args=args, weight="sin", wvar=0.5 * q,
            limlst=200, epsabs=1e-14,
        )  # fmt: skip
        tail = cos_part - sin_part
    return 0.5 + (start + tail) / np.pi


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


def mixture_sf(q: float, lambdas: np.ndarray) -> float:
    """P(sum lambda_j chi2_1 > q).

    Exact chi-square tails for one or equal weights; otherwise Imhof's
    integral, or Kuonen's saddlepoint below ``IMHOF_FLOOR``.
    """
    lam = _positive(lambdas)
    if lam.size == 0:
        return 1.0
    if np.allclose(lam, lam[0], rtol=1e-10):
        return float(stats.chi2.sf(q / lam[0], lam.size))
    p = imhof_sf(q, lam)
    if not np.isfinite(p) or p < IMHOF_FLOOR or p > 1.0:
        return float(min(1.0, saddlepoint_sf(q, lam)))
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
