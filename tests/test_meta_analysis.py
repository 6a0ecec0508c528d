"""Meta-analysis against R metafor and statsmodels; BH and genomic control."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from conftest import REFERENCE
from naipo_bio.stats.meta import bh_qvalues, genomic_control_lambda, meta_analysis


@pytest.fixture(scope="module")
def pooled():
    data = pd.read_csv(REFERENCE / "meta_inputs.tsv", sep="\t")
    result = meta_analysis(
        data.group.to_numpy(), data.yi.to_numpy(), data.sei.to_numpy()
    )
    return data, result


def test_meta_equals_metafor(pooled):
    _, result = pooled
    reference = pd.read_csv(REFERENCE / "reference_meta.tsv", sep="\t").set_index(
        "group"
    )
    for group, row in reference.iterrows():
        ours = result.loc[group]
        assert ours.n_sites_fit == row.k
        assert ours.log_hr_fe == pytest.approx(row.fe, rel=1e-9)
        assert ours.se_fe == pytest.approx(row.se_fe, rel=1e-9)
        assert ours.log_hr_re == pytest.approx(row.re, rel=1e-9)
        assert ours.se_re == pytest.approx(row.se_re, rel=1e-9)
        assert ours.tau2 == pytest.approx(row.tau2, rel=1e-8, abs=1e-12)
        assert ours.het_q == pytest.approx(row.Q, rel=1e-9)
        assert ours.het_p == pytest.approx(row.Q_p, rel=1e-7)
        assert ours.i2 == pytest.approx(row.I2, rel=1e-8, abs=1e-12)


@pytest.mark.filterwarnings(
    "ignore::RuntimeWarning"
)  # statsmodels sqrt of negative tau2
def test_meta_equals_statsmodels_combine_effects(pooled):
    """statsmodels 0.15 does not truncate the DL tau2 at 0, so random effects are
    compared only where its tau2 is positive; elsewhere tau2 = 0 and RE = FE."""
    data, result = pooled
    compared = 0
    for group, rows in data.groupby("group"):
        reference = combine_effects(
            rows.yi.to_numpy(), rows.sei.to_numpy() ** 2, method_re="dl"
        )
        summary = reference.summary_frame()
        ours = result.loc[group]
        assert ours.log_hr_fe == pytest.approx(
            summary.loc["fixed effect", "eff"], rel=1e-9
        )
        if reference.tau2 > 0:
            compared += 1
            assert ours.log_hr_re == pytest.approx(
                summary.loc["random effect", "eff"], rel=1e-9
            )
            assert ours.tau2 == pytest.approx(reference.tau2, rel=1e-8)
        else:
            assert ours.tau2 == 0.0
            assert ours.log_hr_re == pytest.approx(ours.log_hr_fe, rel=1e-12)
    assert compared >= 10


def test_meta_ignores_missing_and_zero_se():
    groups = np.array(["a", "a", "a", "b"])
    result = meta_analysis(
        groups, np.array([0.1, 0.5, np.nan, 0.2]), np.array([0.2, 0.0, 0.3, 0.1])
    )
    assert result.loc["a"].n_sites_fit == 1
    assert result.loc["a"].log_hr_fe == pytest.approx(0.1)
    assert np.isnan(result.loc["a"].het_q)


def test_bh_keeps_nan_and_matches_hand_computation():
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.5])
    q = bh_qvalues(p)
    assert np.isnan(q[1])
    # ranks among the 4 finite p: 0.01 -> 1, 0.03 -> 2, 0.04 -> 3, 0.5 -> 4
    assert q[0] == pytest.approx(0.04)
    assert q[3] == pytest.approx(0.04 * 4 / 3)
    assert q[2] == pytest.approx(0.04 * 4 / 3)
    assert q[4] == pytest.approx(0.5)


@pytest.mark.parametrize("n", [1, 2, 7, 10, 1001])
def test_genomic_control_lambda_equals_full_transform(n):
    p = np.random.default_rng(n).random(n)
    expected = np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1)
    assert genomic_control_lambda(p) == pytest.approx(expected, rel=1e-14)


def test_genomic_control_lambda_is_one_under_uniform_p():
    p = (np.arange(1, 100001) - 0.5) / 100000
    assert genomic_control_lambda(p) == pytest.approx(1.0, abs=1e-3)
