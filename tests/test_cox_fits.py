"""Per-site Cox fits (biomarker plus covariates): R, lifelines, statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from statsmodels.duration.hazard_regression import PHReg

from conftest import REFERENCE, simulate_sites
from naipo_bio.errors import InputError
from naipo_bio.stats import cox


def fit_one(time, event, g, X, ties, strata=None):
    design = cox.SurvivalDesign.from_arrays(time, event, X, strata=strata, ties=ties)
    null = cox.fit_null(design)
    return cox.fit_biomarkers(design, null, np.asarray(g, float)[None, :])


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_site_fits_equal_r_coxph(ties):
    data = pd.read_csv(REFERENCE / "synthetic_sites.tsv", sep="\t")
    reference = pd.read_csv(REFERENCE / "reference_fits.tsv", sep="\t")
    for row in reference.loc[reference.ties == ties].itertuples():
        site = data.loc[data.site == row.site]
        result = fit_one(
            site.time,
            site.event,
            site[row.biomarker],
            site[["age", "sex"]].to_numpy(),
            ties,
        )
        assert result.status[0] == "ok"
        assert result.log_hr[0] == pytest.approx(row.beta, abs=1e-6)
        assert result.se[0] == pytest.approx(row.se, abs=1e-6)
        assert result.loglik[0] == pytest.approx(row.loglik, abs=1e-6)


@pytest.mark.parametrize("seed", [21, 22])
def test_efron_fits_equal_lifelines(seed):
    data = simulate_sites(seed, sizes=(150,), tie_grid=45.0)
    frame = pd.DataFrame(data["X"], columns=["x0", "x1"])
    frame["time"] = data["time"]
    frame["event"] = data["event"]
    for biomarker in ("g_bin", "g_cont"):
        frame["g"] = data[biomarker]
        fitter = CoxPHFitter().fit(
            frame[["time", "event", "g", "x0", "x1"]], "time", "event"
        )
        result = fit_one(
            data["time"], data["event"], data[biomarker], data["X"], "efron"
        )
        assert result.log_hr[0] == pytest.approx(fitter.params_["g"], abs=1e-6)
        assert result.se[0] == pytest.approx(fitter.standard_errors_["g"], abs=1e-6)


def test_stratified_breslow_fits_equal_statsmodels():
    data = simulate_sites(31, sizes=(200,), tie_grid=20.0)
    strata = (np.arange(200) % 4).astype(str)
    exog = np.column_stack([data["g_dose"], data["X"]])
    reference = PHReg(
        data["time"], exog, status=data["event"], strata=strata, ties="breslow"
    ).fit()
    result = fit_one(
        data["time"], data["event"], data["g_dose"], data["X"], "breslow", strata
    )
    assert result.log_hr[0] == pytest.approx(reference.params[0], abs=1e-6)
    assert result.se[0] == pytest.approx(reference.bse[0], abs=1e-6)


def test_null_fit_rejects_collinear_covariates():
    data = simulate_sites(3, sizes=(80,))
    X = np.column_stack([data["X"][:, 0], 3.0 * data["X"][:, 0]])
    design = cox.SurvivalDesign.from_arrays(
        data["time"], data["event"], X, covariate_names=["a", "b"]
    )
    with pytest.raises(InputError, match="collinear"):
        cox.fit_null(design)


def test_constant_covariate_dropped_within_strata():
    data = simulate_sites(3, sizes=(80,))
    strata = np.repeat(["s1", "s2"], 40)
    constant_in_strata = np.repeat([0.0, 1.0], 40)
    X = np.column_stack([data["X"][:, 0], constant_in_strata])
    design = cox.SurvivalDesign.from_arrays(
        data["time"], data["event"], X, strata, covariate_names=["x", "stratum_flag"]
    )
    reduced, dropped = design.without_constant_covariates()
    assert dropped == ["stratum_flag"]
    assert reduced.covariate_names == ("x",)
