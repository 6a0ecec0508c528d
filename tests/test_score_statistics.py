"""Score U and efficient information V: kernel, NumPy reference, R, statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg

from conftest import REFERENCE, simulate_sites
from naipo_bio.stats import _reference, cox

BIOMARKERS = ("g_bin", "g_dose", "g_cont")


def site_scores(data, ties, biomarkers=BIOMARKERS):
    """Sum of per-site U and V, each site with its own null model."""
    u = np.zeros(len(biomarkers))
    v = np.zeros(len(biomarkers))
    for site in np.unique(data["site"]):
        m = data["site"] == site
        design = cox.SurvivalDesign.from_arrays(
            data["time"][m], data["event"][m], data["X"][m], ties=ties
        )
        null = cox.fit_null(design)
        G = np.vstack([data[b][m] for b in biomarkers])
        su, sv = cox.score_statistics(design, null, G)
        u += su
        v += sv
    return u, v


def centralized_statsmodels(data, ties, biomarker):
    """Score and efficient information of the pooled model stratified by site with
    site-specific covariate effects, at (0, gamma_hat), from statsmodels PHReg."""
    site = data["site"]
    X_site = np.column_stack(
        [
            data["X"][:, k] * (site == s)
            for s in np.unique(site)
            for k in range(data["X"].shape[1])
        ]
    )
    null = PHReg(
        data["time"], X_site, status=data["event"], strata=site, ties=ties
    ).fit()
    full = np.column_stack([data[biomarker], X_site])
    model = PHReg(data["time"], full, status=data["event"], strata=site, ties=ties)
    params = np.concatenate([[0.0], null.params])
    score = model.score(params)
    information = -model.hessian(params)
    v = information[0, 0] - information[0, 1:] @ np.linalg.solve(
        information[1:, 1:], information[1:, 0]
    )
    return score[0], v


@pytest.mark.parametrize("ties", ["breslow", "efron"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pooled_equals_statsmodels_centralized(ties, seed):
    data = simulate_sites(seed)
    u, v = site_scores(data, ties)
    for i, biomarker in enumerate(BIOMARKERS):
        u_ref, v_ref = centralized_statsmodels(data, ties, biomarker)
        assert u[i] == pytest.approx(u_ref, rel=1e-8, abs=1e-10)
        assert v[i] == pytest.approx(v_ref, rel=1e-8)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_pooled_equals_r_coxph(ties):
    """R survival::coxph at (0, gamma_hat) with iter.max = 0, strata(site)."""
    data = pd.read_csv(REFERENCE / "synthetic_sites.tsv", sep="\t")
    reference = pd.read_csv(REFERENCE / "reference_score.tsv", sep="\t")
    arrays = {
        "site": data.site.to_numpy(),
        "time": data.time.to_numpy(float),
        "event": data.event.to_numpy(),
        "X": data[["age", "sex"]].to_numpy(float),
        **{b: data[b].to_numpy(float) for b in BIOMARKERS},
    }
    u, v = site_scores(arrays, ties)
    for i, biomarker in enumerate(BIOMARKERS):
        row = reference.loc[
            (reference.biomarker == biomarker) & (reference.ties == ties)
        ]
        assert u[i] == pytest.approx(row.U.item(), rel=1e-8)
        assert v[i] == pytest.approx(row.V.item(), rel=1e-8)
        assert u[i] ** 2 / v[i] == pytest.approx(row.chisq.item(), rel=1e-7)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_kernel_equals_numpy_reference(ties):
    data = simulate_sites(11, sizes=(80,), tie_grid=60.0)
    strata = (np.arange(80) % 3).astype(str)
    design = cox.SurvivalDesign.from_arrays(
        data["time"], data["event"], data["X"], strata=strata, ties=ties
    )
    null = cox.fit_null(design)
    G = np.vstack([data[b] for b in BIOMARKERS])
    u, v = cox.score_statistics(design, null, G)
    w = np.exp((data["X"] - data["X"].mean(axis=0)) @ null.gamma)
    for i, biomarker in enumerate(BIOMARKERS):
        u_ref, v_ref = _reference.score_information(
            data[biomarker], data["time"], data["event"], strata, w,
            data["X"] - data["X"].mean(axis=0), efron=ties == "efron",
        )  # fmt: skip
        assert u[i] == pytest.approx(u_ref, rel=1e-10, abs=1e-12)
        assert v[i] == pytest.approx(v_ref, rel=1e-10)


def test_score_unchanged_by_shift_of_biomarker():
    data = simulate_sites(5, sizes=(150,))
    design = cox.SurvivalDesign.from_arrays(data["time"], data["event"], data["X"])
    null = cox.fit_null(design)
    g = data["g_cont"]
    u, v = cox.score_statistics(design, null, np.vstack([g, g + 1e6]))
    assert u[1] == pytest.approx(u[0], rel=1e-7)
    assert v[1] == pytest.approx(v[0], rel=1e-7)


def test_no_covariates_is_log_rank_score():
    """Without covariates, U is observed minus expected events among carriers."""
    data = simulate_sites(8, sizes=(100,))
    design = cox.SurvivalDesign.from_arrays(data["time"], data["event"])
    null = cox.fit_null(design)
    g = data["g_bin"]
    u, _ = cox.score_statistics(design, null, g[None, :])
    expected = 0.0
    for t in np.unique(data["time"][data["event"] == 1]):
        at_risk = data["time"] >= t
        deaths = ((data["time"] == t) & (data["event"] == 1)).sum()
        expected += deaths * g[at_risk].sum() / at_risk.sum()
    observed = g[data["event"] == 1].sum()
    assert u[0] == pytest.approx(observed - expected, rel=1e-12)


def test_subset_design_equals_design_built_from_subset():
    data = simulate_sites(9, sizes=(60,))
    strata = (np.arange(60) % 2).astype(str)
    keep = np.arange(60) % 5 != 0
    full = cox.SurvivalDesign.from_arrays(
        data["time"], data["event"], data["X"], strata
    )
    direct = cox.SurvivalDesign.from_arrays(
        data["time"][keep], data["event"][keep], data["X"][keep], strata[keep]
    )
    sub = full.subset(keep)
    g = data["g_cont"][keep][None, :]
    u1, v1 = cox.score_statistics(sub, cox.fit_null(sub), g)
    u2, v2 = cox.score_statistics(direct, cox.fit_null(direct), g)
    assert u1[0] == pytest.approx(u2[0], rel=1e-10)
    assert v1[0] == pytest.approx(v2[0], rel=1e-10)


def test_biomarker_explained_by_covariate_has_zero_information():
    data = simulate_sites(4, sizes=(100,))
    design = cox.SurvivalDesign.from_arrays(data["time"], data["event"], data["X"])
    null = cox.fit_null(design)
    g = 2.0 * data["X"][:, 0] + 1.0
    _, v = cox.score_statistics(design, null, g[None, :])
    assert v[0] == pytest.approx(0.0, abs=1e-8)
