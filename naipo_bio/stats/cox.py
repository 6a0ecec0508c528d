"""Stratified Cox model at one site: null fit, score statistics, per-biomarker fits.

The site-level quantities follow the one-shot federated score test. Each site fits
the null model (covariates only) and releases, per biomarker, the score U and the
efficient information V at beta = 0. Summed over sites, they give exactly the
score test of a model stratified by site with site-specific covariate effects.

References
----------
Cox, D. R. (1972). Regression models and life-tables. JRSS B 34, 187-220.
Lin, D. Y. and Zeng, D. (2010). On the relative efficiency of using summary
statistics versus individual-level data in meta-analysis. Biometrika 97, 321-332.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from naipo_bio.errors import InputError
from naipo_bio.stats import _kernels

log = logging.getLogger(__name__)

TIES = ("breslow", "efron")

#: Newton-Raphson settings, the same as ``survival::coxph.control`` defaults
#: except a tighter ``eps`` and more iterations (R: 1e-9 and 20).
MAX_ITER = 50
EPS = 1e-10
TOLER_INF = 3.162278e-5  # sqrt(1e-9), R's toler.inf

FIT_STATUS = {
    _kernels.FIT_OK: "ok",
    _kernels.FIT_NOT_CONVERGED: "not_converged",
    _kernels.FIT_INFINITE: "infinite",
    _kernels.FIT_SINGULAR: "singular",
}


@dataclass(frozen=True)
class SurvivalDesign:
    """Survival data of one site, sorted by stratum and ascending time.

    Attributes
    ----------
    time : (n,) float64
        Follow-up time in days, sorted within strata.
    event : (n,) int8
        1 = event, 0 = censored.
    bounds : (n_strata + 1,) int64
        Row offsets of the strata.
    X : (n, p) float64
        Covariates, each column centered at its mean.
    order : (n,) int64
        ``sorted = original[order]``: position in the input of each sorted row.
    covariate_names : tuple of str
        Names of the columns of ``X``.
    ties : {"breslow", "efron"}
        Tie handling for all fits and score statistics.
    """

    time: np.ndarray
    event: np.ndarray
    bounds: np.ndarray
    X: np.ndarray
    order: np.ndarray
    covariate_names: tuple[str, ...]
    ties: str = "breslow"

    @classmethod
    def from_arrays(
        cls,
        time: np.ndarray,
        event: np.ndarray,
        X: np.ndarray | None = None,
        strata: np.ndarray | None = None,
        covariate_names: tuple[str, ...] | list[str] | None = None,
        ties: str = "breslow",
    ) -> SurvivalDesign:
        """Sort and check survival data given in input order."""
        time = np.asarray(time, dtype=np.float64)
        event = np.asarray(event)
        n = time.shape[0]
        if ties not in TIES:
            raise InputError(f"ties={ties!r} is not supported; use one of {TIES}.")
        if event.shape != (n,):
            raise InputError(f"event has shape {event.shape}, expected ({n},).")
        if not np.all(np.isfinite(time)):
            raise InputError("time contains NaN or infinite values; drop them first.")
        if np.any(~np.isin(event, (0, 1))):
            raise InputError("event must be coded 0 (censored) or 1 (event).")
        if X is None:
            X = np.empty((n, 0))
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] != n:
            raise InputError(f"X has shape {X.shape}, expected ({n}, p).")
        if covariate_names is None:
            covariate_names = tuple(f"x{i}" for i in range(X.shape[1]))
        if len(covariate_names) != X.shape[1]:
            raise InputError("covariate_names does not match the columns of X.")
        if strata is None:
            strata_codes = np.zeros(n, dtype=np.int64)
        else:
            _, strata_codes = np.unique(np.asarray(strata), return_inverse=True)
        order = np.lexsort((time, strata_codes)).astype(np.int64)
        sorted_strata = strata_codes[order]
        starts = np.flatnonzero(np.diff(sorted_strata)) + 1
        bounds = np.concatenate(([0], starts, [n])).astype(np.int64)
        X_sorted = X[order]
        if X_sorted.shape[1]:
            X_sorted = X_sorted - X_sorted.mean(axis=0)
        return cls(
            time=np.ascontiguousarray(time[order]),
            event=np.ascontiguousarray(event[order].astype(np.int8)),
            bounds=bounds,
            X=np.ascontiguousarray(X_sorted),
            order=order,
            covariate_names=tuple(covariate_names),
            ties=ties,
        )

    @property
    def n(self) -> int:
        return int(self.time.shape[0])

    @property
    def n_events(self) -> int:
        return int(self.event.sum())

    @property
    def efron(self) -> bool:
        return self.ties == "efron"

    def without_constant_covariates(self) -> tuple[SurvivalDesign, list[str]]:
        """Drop covariate columns that do not vary within any stratum.

        A covariate that is constant within every stratum is absorbed by the
        strata's baseline hazards, so dropping it leaves the model unchanged.
        Returns the design and the names dropped.
        """
        if not self.X.shape[1]:
            return self, []
        keep = np.zeros(self.X.shape[1], dtype=bool)
        for lo, hi in zip(self.bounds[:-1], self.bounds[1:], strict=True):
            if hi - lo > 1:
                block = self.X[lo:hi]
                keep |= block.max(axis=0) - block.min(axis=0) > 1e-12
        if keep.all():
            return self, []
        dropped = [n for n, k in zip(self.covariate_names, keep, strict=True) if not k]
        names = tuple(n for n, k in zip(self.covariate_names, keep, strict=True) if k)
        design = SurvivalDesign(
            time=self.time,
            event=self.event,
            bounds=self.bounds,
            X=np.ascontiguousarray(self.X[:, keep]),
            order=self.order,
            covariate_names=names,
            ties=self.ties,
        )
        return design, dropped

    def subset(self, keep_original: np.ndarray) -> SurvivalDesign:
        """Restrict the design to the patients where ``keep_original`` is True.

        ``keep_original`` is in input order, like the arrays given to from_arrays.
        """
        keep_original = np.asarray(keep_original, dtype=bool)
        keep_sorted = keep_original[self.order]
        kept_before = np.concatenate(([0], np.cumsum(keep_sorted)))
        bounds = kept_before[self.bounds].astype(np.int64)
        X = self.X[keep_sorted]
        if X.shape[1] and X.shape[0]:
            X = X - X.mean(axis=0)
        rank = np.cumsum(keep_original) - 1
        return SurvivalDesign(
            time=np.ascontiguousarray(self.time[keep_sorted]),
            event=np.ascontiguousarray(self.event[keep_sorted]),
            bounds=bounds,
            X=np.ascontiguousarray(X),
            order=rank[self.order[keep_sorted]].astype(np.int64),
            covariate_names=self.covariate_names,
            ties=self.ties,
        )


@dataclass(frozen=True)
class NullModel:
    """Cox fit with covariates only: the null model of the score tests."""

    gamma: np.ndarray
    information: np.ndarray
    information_inv: np.ndarray
    loglik: float
    weights: np.ndarray = field(repr=False)
    n_iter: int = 0


def fit_null(design: SurvivalDesign) -> NullModel:
    """Fit the covariates-only Cox model of a site.

    Raises
    ------
    InputError
        If the fit does not converge, or the covariates are collinear or
        separate the events (infinite coefficient).
    """
    p = design.X.shape[1]
    gamma = np.zeros(p)
    info = np.zeros((p, p))
    loglik, n_iter, status = _kernels.cox_newton(
        design.X, design.time, design.event, design.bounds, np.zeros(p),
        design.efron, MAX_ITER, EPS, TOLER_INF, gamma, info,
    )  # fmt: skip
    if status != _kernels.FIT_OK:
        names = ", ".join(design.covariate_names)
        if status == _kernels.FIT_SINGULAR:
            raise InputError(
                f"The null Cox model is singular: covariates ({names}) are collinear "
                "or one of them is constant. Drop or merge the offending covariate."
            )
        if status == _kernels.FIT_INFINITE:
            raise InputError(
                f"The null Cox model has an infinite coefficient: a covariate among "
                f"({names}) separates the events (for example a category level in "
                "which every patient had an event). Merge sparse levels or drop it."
            )
        raise InputError(
            f"The null Cox model with covariates ({names}) did not converge in "
            f"{MAX_ITER} iterations. Check the covariates for extreme values."
        )
    if p:
        info_inv = np.linalg.inv(info)
        w = np.exp(design.X @ gamma)
    else:
        info_inv = np.zeros((0, 0))
        w = np.ones(design.n)
    log.debug("null model: gamma=%s loglik=%.6f iterations=%d", gamma, loglik, n_iter)
    return NullModel(gamma, info, info_inv, float(loglik), w, int(n_iter))


def score_statistics(
    design: SurvivalDesign, null: NullModel, G: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Score U and efficient information V at beta = 0 for each row of ``G``.

    Parameters
    ----------
    G : (m, n) array
        Biomarker values with columns in the design's *input* order; no NaN.

    Returns
    -------
    U, V : (m,) float64
    """
    return score_statistics_sorted(design, null, _sorted_biomarkers(design, G))


def score_statistics_sorted(
    design: SurvivalDesign, null: NullModel, G_sorted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`score_statistics` for ``G`` already in the design's sorted order."""
    m = G_sorted.shape[0]
    out_u = np.empty(m)
    out_v = np.empty(m)
    if design.efron:
        _kernels.score_information(
            G_sorted, design.time, design.event, design.bounds, null.weights,
            design.X, null.information_inv, design.efron, out_u, out_v,
        )  # fmt: skip
    else:
        terms = breslow_terms(design, null)
        _kernels.score_information_breslow(
            G_sorted, G_sorted.mean(axis=1), terms.residual, terms.weighted_hazard,
            null.weights,
            terms.coef, terms.reset, terms.covariate_term_t, null.information_inv,
            out_u, out_v,
        )  # fmt: skip
    return out_u, out_v


@dataclass(frozen=True)
class BreslowTerms:
    """Per-patient vectors of the null model for the Breslow score kernel."""

    residual: np.ndarray  # martingale residual d_k - w_k H_k
    weighted_hazard: np.ndarray  # w_k H_k
    covariate_term_t: np.ndarray  # (p, n): w_k (x_k H_k - C_k), transposed
    coef: np.ndarray  # e_t / S0(t)^2 at the first row of each tied-time group
    reset: np.ndarray  # True at the last row of each stratum


def breslow_terms(design: SurvivalDesign, null: NullModel) -> BreslowTerms:
    """Compute the vectors once per null model (cached on the model)."""
    cached = getattr(null, "_breslow_terms", None)
    if cached is not None:
        return cached
    n = design.n
    p = design.X.shape[1]
    w = null.weights
    hazard = np.zeros(n)
    cumulative_c = np.zeros((n, p))
    coef = np.zeros(n)
    reset = np.zeros(n, dtype=bool)
    for lo, hi in zip(design.bounds[:-1], design.bounds[1:], strict=True):
        if hi == lo:
            continue
        reset[hi - 1] = True
        time = design.time[lo:hi]
        # Group rows by tied time; risk sums are suffix sums over the stratum.
        starts = np.flatnonzero(np.concatenate(([True], time[1:] != time[:-1])))
        ends = np.concatenate((starts[1:], [hi - lo]))
        s0 = np.cumsum(w[lo:hi][::-1])[::-1][starts]
        s1x = np.cumsum((w[lo:hi, None] * design.X[lo:hi])[::-1], axis=0)[::-1][starts]
        events = np.add.reduceat(design.event[lo:hi].astype(np.float64), starts)
        increment = events / s0
        c_increment = (events / s0**2)[:, None] * s1x
        group_hazard = np.cumsum(increment)
        group_c = np.cumsum(c_increment, axis=0)
        sizes = ends - starts
        hazard[lo:hi] = np.repeat(group_hazard, sizes)
        cumulative_c[lo:hi] = np.repeat(group_c, sizes, axis=0)
        coef[lo + starts] = events / s0**2
    weighted_hazard = w * hazard
    residual = design.event - weighted_hazard
    covariate_term = w[:, None] * (design.X * hazard[:, None] - cumulative_c)
    terms = BreslowTerms(
        residual, weighted_hazard, np.ascontiguousarray(covariate_term.T), coef, reset
    )
    object.__setattr__(null, "_breslow_terms", terms)
    return terms


@dataclass(frozen=True)
class BiomarkerFits:
    """Per-biomarker Cox fits (biomarker plus covariates) at one site."""

    log_hr: np.ndarray
    se: np.ndarray
    loglik: np.ndarray
    status: np.ndarray  # FIT_STATUS labels
    n_iter: np.ndarray


def fit_biomarkers(
    design: SurvivalDesign, null: NullModel, G: np.ndarray
) -> BiomarkerFits:
    """Fit one Cox model per row of ``G`` (input column order), adjusted for X."""
    G_sorted = _sorted_biomarkers(design, G)
    m = G_sorted.shape[0]
    beta = np.empty(m)
    se = np.empty(m)
    loglik = np.empty(m)
    status = np.empty(m, dtype=np.int64)
    n_iter = np.empty(m, dtype=np.int64)
    _kernels.fit_biomarkers(
        G_sorted, design.X, design.time, design.event, design.bounds, null.gamma,
        design.efron, MAX_ITER, EPS, TOLER_INF, beta, se, loglik, status, n_iter,
    )  # fmt: skip
    labels = np.array([FIT_STATUS[int(s)] for s in status], dtype=object)
    return BiomarkerFits(beta, se, loglik, labels, n_iter)


def _sorted_biomarkers(design: SurvivalDesign, G: np.ndarray) -> np.ndarray:
    G = np.asarray(G)
    if G.ndim != 2 or G.shape[1] != design.n:
        raise InputError(f"G has shape {G.shape}, expected (m, {design.n}).")
    if G.dtype not in (np.float32, np.float64):
        G = G.astype(np.float64)
    return np.ascontiguousarray(G[:, design.order])


def score_covariance(
    design: SurvivalDesign, null: NullModel, G: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Score vector and efficient covariance of the rows of ``G`` (input order).

    Returns U (k,) and V (k, k); the diagonal of V equals what
    :func:`score_statistics` returns for each row alone.
    """
    G_sorted = _sorted_biomarkers(design, G)
    k = G_sorted.shape[0]
    out_u = np.empty(k)
    out_v = np.empty((k, k))
    _kernels.score_covariance(
        G_sorted, design.time, design.event, design.bounds, null.weights,
        design.X, null.information_inv, design.efron, out_u, out_v,
    )  # fmt: skip
    return out_u, out_v
