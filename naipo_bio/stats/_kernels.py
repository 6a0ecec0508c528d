"""numba kernels for the stratified Cox model.

Every kernel takes patients sorted by stratum and then by ascending time, with
``bounds[s]:bounds[s + 1]`` the rows of stratum ``s``. Risk sets are built by
walking each stratum backwards from its last time, so one pass over the patients
serves all event times. Ties are handled by Breslow's or Efron's approximation
(``efron=False`` / ``True``). Outputs go into preallocated arrays.

References
----------
Cox, D. R. (1972). Regression models and life-tables. JRSS B 34, 187-220.
Breslow, N. (1974). Covariance analysis of censored survival data.
Biometrics 30, 89-99.
Efron, B. (1977). The efficiency of Cox's likelihood function for censored data.
JASA 72, 557-565.
Therneau, T. M. and Grambsch, P. M. (2000). Modeling Survival Data. Springer,
section 3.3 (score test) and the Newton-Raphson scheme of ``survival::coxph``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from naipo_bio.stats._numba import kernel

FIT_OK = 0
FIT_NOT_CONVERGED = 1
FIT_INFINITE = 2
FIT_SINGULAR = 3


@kernel(parallel=True)
def score_information(G, time, event, bounds, w, X, ixx_inv, efron, out_u, out_v):
    """Score U and efficient information V of each row of ``G`` at beta = 0.

    Parameters
    ----------
    G : (m, n) float array
        Biomarker values, one row per biomarker, columns in sorted patient order.
        No NaN: missing values are handled before the kernel is called.
    time, event : (n,) arrays
        Survival time and event indicator (1 = event), sorted.
    bounds : (n_strata + 1,) int64
        Row offsets of the strata.
    w : (n,) float64
        Null-model relative risks exp(x' gamma_hat).
    X : (n, p) float64
        Covariates (p may be 0).
    ixx_inv : (p, p) float64
        Inverse of the null-model information I_xx at gamma_hat.
    efron : bool
        Efron's tie correction instead of Breslow's.
    out_u, out_v : (m,) float64
        Filled with U and V = I_gg - I_gx I_xx^-1 I_xg.
    """
    m, n = G.shape
    p = X.shape[1]
    n_strata = bounds.shape[0] - 1
    for j in prange(m):
        # U and V do not change when g is shifted by a constant; centering keeps
        # the S2/S0 - (S1/S0)^2 differences away from cancellation.
        center = 0.0
        for k in range(n):
            center += G[j, k]
        center /= max(n, 1)

        u = 0.0
        igg = 0.0
        igx = np.zeros(p)
        s1x = np.empty(p)
        s2gx = np.empty(p)
        d1x = np.empty(p)
        d2gx = np.empty(p)
        for s in range(n_strata):
            lo = bounds[s]
            hi = bounds[s + 1]
            s0 = 0.0
            s1g = 0.0
            s2g = 0.0
            s1x[:] = 0.0
            s2gx[:] = 0.0
            i = hi - 1
            while i >= lo:
                t = time[i]
                n_events = 0
                sum_g_events = 0.0
                d0 = 0.0
                d1g = 0.0
                d2g = 0.0
                d1x[:] = 0.0
                d2gx[:] = 0.0
                k = i
                while k >= lo and time[k] == t:
                    wk = w[k]
                    gk = G[j, k] - center
                    s0 += wk
                    s1g += wk * gk
                    s2g += wk * gk * gk
                    for a in range(p):
                        s1x[a] += wk * X[k, a]
                        s2gx[a] += wk * gk * X[k, a]
                    if event[k]:
                        n_events += 1
                        sum_g_events += gk
                        if efron:
                            d0 += wk
                            d1g += wk * gk
                            d2g += wk * gk * gk
                            for a in range(p):
                                d1x[a] += wk * X[k, a]
                                d2gx[a] += wk * gk * X[k, a]
                    k -= 1
                if n_events > 0:
                    u += sum_g_events
                    if not efron:
                        mean_g = s1g / s0
                        u -= n_events * mean_g
                        igg += n_events * (s2g / s0 - mean_g * mean_g)
                        for a in range(p):
                            igx[a] += n_events * (s2gx[a] / s0 - mean_g * s1x[a] / s0)
                    else:
                        for r in range(n_events):
                            f = r / n_events
                            a0 = s0 - f * d0
                            mean_g = (s1g - f * d1g) / a0
                            u -= mean_g
                            igg += (s2g - f * d2g) / a0 - mean_g * mean_g
                            for a in range(p):
                                mean_x = (s1x[a] - f * d1x[a]) / a0
                                igx[a] += (s2gx[a] - f * d2gx[a]) / a0 - mean_g * mean_x
                i = k
        v = igg
        for a in range(p):
            for b in range(p):
                v -= igx[a] * ixx_inv[a, b] * igx[b]
        out_u[j] = u
        # Rounding can leave a tiny negative V for a biomarker that the
        # covariates explain completely; such a biomarker carries no information.
        out_v[j] = v if v > 0.0 else 0.0


@kernel
def cox_derivatives(Z, time, event, bounds, beta, efron, grad, info):
    """Log partial likelihood at ``beta``; fills its gradient and information.

    ``Z`` is (n, q); ``grad`` (q,) and ``info`` (q, q) are overwritten.
    """
    n, q = Z.shape
    n_strata = bounds.shape[0] - 1
    eta = np.empty(n)
    top = -np.inf
    for k in range(n):
        e = 0.0
        for a in range(q):
            e += Z[k, a] * beta[a]
        eta[k] = e
        if e > top:
            top = e
    # Shifting every linear predictor by one constant leaves the partial
    # likelihood unchanged and keeps exp() from overflowing.
    if n == 0:
        top = 0.0

    grad[:] = 0.0
    info[:, :] = 0.0
    loglik = 0.0
    s1 = np.empty(q)
    s2 = np.empty((q, q))
    d1 = np.empty(q)
    d2 = np.empty((q, q))
    for s in range(n_strata):
        lo = bounds[s]
        hi = bounds[s + 1]
        s0 = 0.0
        s1[:] = 0.0
        s2[:, :] = 0.0
        i = hi - 1
        while i >= lo:
            t = time[i]
            n_events = 0
            d0 = 0.0
            d1[:] = 0.0
            d2[:, :] = 0.0
            k = i
            while k >= lo and time[k] == t:
                r = math.exp(eta[k] - top)
                s0 += r
                for a in range(q):
                    s1[a] += r * Z[k, a]
                    for b in range(a + 1):
                        s2[a, b] += r * Z[k, a] * Z[k, b]
                if event[k]:
                    n_events += 1
                    loglik += eta[k] - top
                    for a in range(q):
                        grad[a] += Z[k, a]
                    if efron:
                        d0 += r
                        for a in range(q):
                            d1[a] += r * Z[k, a]
                            for b in range(a + 1):
                                d2[a, b] += r * Z[k, a] * Z[k, b]
                k -= 1
            if n_events > 0:
                if not efron:
                    loglik -= n_events * math.log(s0)
                    for a in range(q):
                        mean_a = s1[a] / s0
                        grad[a] -= n_events * mean_a
                        for b in range(a + 1):
                            info[a, b] += n_events * (
                                s2[a, b] / s0 - mean_a * s1[b] / s0
                            )
                else:
                    for r_idx in range(n_events):
                        f = r_idx / n_events
                        a0 = s0 - f * d0
                        loglik -= math.log(a0)
                        for a in range(q):
                            mean_a = (s1[a] - f * d1[a]) / a0
                            grad[a] -= mean_a
                            for b in range(a + 1):
                                mean_b = (s1[b] - f * d1[b]) / a0
                                info[a, b] += (
                                    s2[a, b] - f * d2[a, b]
                                ) / a0 - mean_a * mean_b
            i = k
    for a in range(q):
        for b in range(a):
            info[b, a] = info[a, b]
    return loglik


@kernel
def _solve_spd(info, grad, out):
    """Solve info @ out = grad by Cholesky; return False when info is singular."""
    q = info.shape[0]
    chol = np.zeros((q, q))
    for a in range(q):
        total = info[a, a]
        for c in range(a):
            total -= chol[a, c] * chol[a, c]
        if total <= 1e-12 * max(abs(info[a, a]), 1e-300):
            return False
        chol[a, a] = math.sqrt(total)
        for b in range(a + 1, q):
            total = info[b, a]
            for c in range(a):
                total -= chol[b, c] * chol[a, c]
            chol[b, a] = total / chol[a, a]
    y = np.empty(q)
    for a in range(q):
        total = grad[a]
        for c in range(a):
            total -= chol[a, c] * y[c]
        y[a] = total / chol[a, a]
    for a in range(q - 1, -1, -1):
        total = y[a]
        for c in range(a + 1, q):
            total -= chol[c, a] * out[c]
        out[a] = total / chol[a, a]
    return True


@kernel
def cox_newton(
    Z, time, event, bounds, init, efron, max_iter, eps, toler_inf, beta, info
):
    """Fit the Cox model by Newton-Raphson with step halving.

    Convergence follows ``survival::coxph``: the relative change of the log
    partial likelihood falls below ``eps``. A coefficient is flagged infinite
    (monotone likelihood) when, at convergence, the next Newton step for it is
    still larger than ``eps`` and than ``toler_inf * |beta|``.

    Returns
    -------
    loglik : float
        Log partial likelihood at ``beta``.
    n_iter : int
        Newton iterations taken.
    status : int
        FIT_OK, FIT_NOT_CONVERGED, FIT_INFINITE or FIT_SINGULAR.

    ``beta`` (q,) and ``info`` (q, q) are overwritten with the estimate and the
    information matrix at it.
    """
    q = Z.shape[1]
    grad = np.empty(q)
    step = np.empty(q)
    trial = np.empty(q)
    grad_trial = np.empty(q)
    info_trial = np.empty((q, q))
    beta[:] = init
    loglik = cox_derivatives(Z, time, event, bounds, beta, efron, grad, info)
    if q == 0:
        return loglik, 0, FIT_OK
    converged = False
    n_iter = 0
    halving = 0
    while n_iter < max_iter:
        n_iter += 1
        if halving == 0:
            if not _solve_spd(info, grad, step):
                return loglik, n_iter, FIT_SINGULAR
            for a in range(q):
                trial[a] = beta[a] + step[a]
        else:
            for a in range(q):
                trial[a] = 0.5 * (trial[a] + beta[a])
        loglik_trial = cox_derivatives(
            Z, time, event, bounds, trial, efron, grad_trial, info_trial
        )
        if not math.isfinite(loglik_trial) or loglik_trial < loglik - eps * (
            abs(loglik) + 1.0
        ):
            halving += 1
            if halving > 30:
                break
            continue
        halving = 0
        change = abs(loglik_trial - loglik)
        beta[:] = trial
        grad[:] = grad_trial
        info[:, :] = info_trial
        loglik = loglik_trial
        if change <= eps * (abs(loglik) + 1.0):
            converged = True
            break
    if not converged:
        return loglik, n_iter, FIT_NOT_CONVERGED
    if not _solve_spd(info, grad, step):
        return loglik, n_iter, FIT_SINGULAR
    for a in range(q):
        if abs(step[a]) > eps and abs(step[a]) > toler_inf * abs(beta[a]):
            return loglik, n_iter, FIT_INFINITE
    # One more Newton step from the converged point polishes beta to near
    # machine precision, and the information is then taken at that beta.
    for a in range(q):
        trial[a] = beta[a] + step[a]
    loglik_trial = cox_derivatives(
        Z, time, event, bounds, trial, efron, grad, info_trial
    )
    if math.isfinite(loglik_trial) and loglik_trial >= loglik - eps * (
        abs(loglik) + 1.0
    ):
        beta[:] = trial
        info[:, :] = info_trial
        loglik = loglik_trial
    return loglik, n_iter, FIT_OK


@kernel(parallel=True)
def fit_biomarkers(
    G, X, time, event, bounds, gamma0, efron, max_iter, eps, toler_inf,
    out_beta, out_se, out_loglik, out_status, out_iter,
):  # fmt: skip
    """Fit Cox models with one biomarker (a row of ``G``) and the covariates ``X``.

    Each fit starts from (0, gamma0). Outputs are the biomarker's log hazard
    ratio and its standard error from the inverse information.
    """
    m, n = G.shape
    p = X.shape[1]
    q = p + 1
    for j in prange(m):
        Z = np.empty((n, q))
        center = 0.0
        for k in range(n):
            center += G[j, k]
        center /= max(n, 1)
        for k in range(n):
            Z[k, 0] = G[j, k] - center
            for a in range(p):
                Z[k, a + 1] = X[k, a]
        init = np.zeros(q)
        for a in range(p):
            init[a + 1] = gamma0[a]
        beta = np.empty(q)
        info = np.empty((q, q))
        loglik, n_iter, status = cox_newton(
            Z, time, event, bounds, init, efron, max_iter, eps, toler_inf, beta, info
        )
        out_beta[j] = beta[0]
        out_loglik[j] = loglik
        out_status[j] = status
        out_iter[j] = n_iter
        unit = np.zeros(q)
        unit[0] = 1.0
        column = np.empty(q)
        if status != FIT_SINGULAR and _solve_spd(info, unit, column):
            out_se[j] = math.sqrt(column[0]) if column[0] > 0.0 else np.nan
        else:
            out_se[j] = np.nan


@kernel
def score_covariance(G, time, event, bounds, w, X, ixx_inv, efron, out_u, out_v):
    """Score vector U (k,) and efficient covariance V (k, k) of the rows of ``G``.

    The covariance analogue of :func:`score_information`, used for the variants
    of one gene: V = I_gg - I_gx I_xx^-1 I_xg with I_gg a (k, k) block.
    Costs O(n k^2); ``G`` is (k, n) in sorted order without NaN.
    """
    k, n = G.shape
    p = X.shape[1]
    n_strata = bounds.shape[0] - 1
    center = np.zeros(k)
    for j in range(k):
        for i in range(n):
            center[j] += G[j, i]
        center[j] /= max(n, 1)
    igg = np.zeros((k, k))
    igx = np.zeros((k, p))
    u = np.zeros(k)
    s1g = np.empty(k)
    s2g = np.empty((k, k))
    s1x = np.empty(p)
    s2gx = np.empty((k, p))
    d1g = np.empty(k)
    d2g = np.empty((k, k))
    d1x = np.empty(p)
    d2gx = np.empty((k, p))
    g = np.empty(k)
    for s in range(n_strata):
        lo = bounds[s]
        hi = bounds[s + 1]
        s0 = 0.0
        s1g[:] = 0.0
        s2g[:, :] = 0.0
        s1x[:] = 0.0
        s2gx[:, :] = 0.0
        i = hi - 1
        while i >= lo:
            t = time[i]
            n_events = 0
            d0 = 0.0
            d1g[:] = 0.0
            d2g[:, :] = 0.0
            d1x[:] = 0.0
            d2gx[:, :] = 0.0
            m = i
            while m >= lo and time[m] == t:
                wm = w[m]
                for a in range(k):
                    g[a] = G[a, m] - center[a]
                s0 += wm
                for b in range(p):
                    s1x[b] += wm * X[m, b]
                for a in range(k):
                    s1g[a] += wm * g[a]
                    for c in range(a + 1):
                        s2g[a, c] += wm * g[a] * g[c]
                    for b in range(p):
                        s2gx[a, b] += wm * g[a] * X[m, b]
                if event[m]:
                    n_events += 1
                    for a in range(k):
                        u[a] += g[a]
                    if efron:
                        d0 += wm
                        for b in range(p):
                            d1x[b] += wm * X[m, b]
                        for a in range(k):
                            d1g[a] += wm * g[a]
                            for c in range(a + 1):
                                d2g[a, c] += wm * g[a] * g[c]
                            for b in range(p):
                                d2gx[a, b] += wm * g[a] * X[m, b]
                m -= 1
            if n_events > 0:
                n_terms = n_events if efron else 1
                weight = 1.0 if efron else float(n_events)
                for r in range(n_terms):
                    f = r / n_events if efron else 0.0
                    a0 = s0 - f * d0
                    for a in range(k):
                        mean_a = (s1g[a] - f * d1g[a]) / a0
                        u[a] -= weight * mean_a
                        for c in range(a + 1):
                            mean_c = (s1g[c] - f * d1g[c]) / a0
                            igg[a, c] += weight * (
                                (s2g[a, c] - f * d2g[a, c]) / a0 - mean_a * mean_c
                            )
                        for b in range(p):
                            mean_x = (s1x[b] - f * d1x[b]) / a0
                            igx[a, b] += weight * (
                                (s2gx[a, b] - f * d2gx[a, b]) / a0 - mean_a * mean_x
                            )
            i = m
    for a in range(k):
        out_u[a] = u[a]
        for c in range(a + 1):
            value = igg[a, c]
            for b in range(p):
                for e in range(p):
                    value -= igx[a, b] * ixx_inv[b, e] * igx[c, e]
            out_v[a, c] = value
            out_v[c, a] = value


@kernel(parallel=True)
def score_information_breslow(
    G, center, m, wh, w, coef, reset, At, ixx_inv, out_u, out_v
):  # fmt: skip
    """Breslow U and V of each row of ``G`` from per-patient vectors.

    With H_k the cumulative baseline hazard at T_k, C_k the cumulative sum of
    e_t S1x(t) / S0(t)^2 over event times up to T_k, and m_k = d_k - w_k H_k:

        U    = sum_k g_k m_k
        I_gg = sum_k w_k H_k g_k^2 - sum_t e_t (S1g(t) / S0(t))^2
        I_gx = sum_k g_k w_k (x_k H_k - C_k)

    so only the second term of I_gg needs the running risk-set sum S1g.
    ``coef`` holds e_t / S0(t)^2 at the first row of each tied-time group (0
    elsewhere); ``reset`` marks the last row of each stratum, where the
    backward running sum restarts. ``At`` is (p, n), the transpose of
    w (x H - C). Rows are centered at ``center`` (their means), which keeps
    the sums of squares away from cancellation. Every accumulator is a scalar,
    and I_gx is one dot product per covariate over the cached row.
    """
    n_rows, n = G.shape
    p = At.shape[0]
    for j in prange(n_rows):
        c = center[j]
        u = 0.0
        first = 0.0
        second = 0.0
        s1g = 0.0
        for k in range(n - 1, -1, -1):
            if reset[k]:
                s1g = 0.0
            g = G[j, k] - c
            u += m[k] * g
            first += wh[k] * g * g
            s1g += w[k] * g
            second += coef[k] * s1g * s1g
        v = first - second
        igx = np.empty(p)
        for a in range(p):
            total = 0.0
            for k in range(n):
                total += At[a, k] * (G[j, k] - c)
            igx[a] = total
        for a in range(p):
            for b in range(p):
                v -= igx[a] * ixx_inv[a, b] * igx[b]
        out_u[j] = u
        out_v[j] = v if v > 0.0 else 0.0
