"""Survival-data failure cases: ties (C09), bad times (C10), separation (C11),
sites without events or carriers (C13). R values: survival 3.5-3."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import CASES
from naipo_bio.errors import DataQualityWarning, InputError, MergeError
from naipo_bio.io.clinical import read_clinical
from naipo_bio.merge.pool import pool_kind
from naipo_bio.merge.validate import check_compatible
from naipo_bio.site.disclosure import apply_policy
from naipo_bio.site.statistics import BiomarkerData, biomarker_table
from naipo_bio.stats import cox

NO_COVARIATES = {"covariates": [], "stratify_by": []}


def case_table(frame, ties="breslow", strata=None, kind="mutation"):
    design = cox.SurvivalDesign.from_arrays(
        frame.iloc[:, 1].to_numpy(float),
        frame.event.to_numpy(),
        strata=strata,
        ties=ties,
    )
    null = cox.fit_null(design)
    data = BiomarkerData(kind, ["BM"], ["BM"], frame.biomarker.to_numpy(float)[None, :])
    return biomarker_table(design, null, data, fits=True)


@pytest.mark.parametrize(
    "ties, u, v, beta, se",
    [
        ("breslow", 1.35064, 2.92420, 0.44166, 0.56349),
        ("efron", 1.45666, 2.89331, 0.47832, 0.56358),
    ],
)
def test_c09_ties_equal_r(ties, u, v, beta, se):
    frame = pd.read_csv(CASES / "C09.tsv", sep="\t")
    row = case_table(frame, ties).iloc[0]
    assert row.u == pytest.approx(u, abs=1e-5)
    assert row.v == pytest.approx(v, abs=1e-5)
    assert row.log_hr == pytest.approx(beta, abs=1e-5)
    assert row.se == pytest.approx(se, abs=1e-5)


def test_c09_merge_rejects_mixed_tie_methods():
    class FakeBundle:
        def __init__(self, site, ties):
            self.site_id = site
            self.path = f"{site}.naipo"
            self.manifest = {
                "analysis_id": "a", "config_hash": "h", "ties": ties,
                "time_unit": "days", "genome_build": None, "schema_version": "1.0",
            }  # fmt: skip

    with pytest.raises(MergeError, match="ties"):
        check_compatible([FakeBundle("A", "breslow"), FakeBundle("B", "efron")])


def clinical_config(path, **extra):
    config = {"path": str(path), "columns": {}, "time_unit": None, "event_values": {}}
    config.update(extra)
    return config


def test_c10_negative_time_is_an_error_naming_the_patient():
    with pytest.raises(InputError, match="P002") as info:
        read_clinical(clinical_config(CASES / "C10.tsv"), NO_COVARIATES)
    assert "negative" in str(info.value)
    assert "C10.tsv" in str(info.value)


def test_c10_cleaned_table_matches_r(tmp_path):
    frame = pd.read_csv(CASES / "C10.tsv", sep="\t", dtype=str)
    path = tmp_path / "C10.fixed.tsv"
    frame.loc[frame.patient_id != "P002"].to_csv(path, sep="\t", index=False)
    with pytest.warns(DataQualityWarning) as caught:
        clinical = read_clinical(clinical_config(path), NO_COVARIATES)
    messages = " ".join(str(w.message) for w in caught)
    assert "P003" in messages  # missing time, excluded
    assert "P001" in messages  # time 0, kept and flagged
    assert clinical.counts["excluded_missing_time"] == 1
    assert clinical.counts["zero_times"] == 1
    assert len(clinical.patient_ids) == 8
    assert clinical.event.sum() == 5
    months = dict(zip(clinical.patient_ids, clinical.time_days, strict=True))
    assert months["P006"] == pytest.approx(13.8 * 30.4375)
    biomarker = frame.set_index("patient_id").loc[clinical.patient_ids, "biomarker"]
    design = cox.SurvivalDesign.from_arrays(clinical.time_days, clinical.event)
    null = cox.fit_null(design)
    g = biomarker.to_numpy(float)[None, :]
    fit = cox.fit_biomarkers(design, null, g)
    u, v = cox.score_statistics(design, null, g)
    assert fit.log_hr[0] == pytest.approx(1.75581, abs=1e-5)
    assert np.exp(fit.log_hr[0]) == pytest.approx(5.7882, abs=1e-4)
    assert u[0] ** 2 / v[0] == pytest.approx(2.69716, abs=1e-5)


def test_c10_mixed_units_need_the_unit_column(tmp_path):
    config = clinical_config(CASES / "C10.tsv", time_unit="days")
    frame = pd.read_csv(CASES / "C10.tsv", sep="\t", dtype=str)
    path = tmp_path / "c10.tsv"
    frame.loc[frame.patient_id != "P002"].to_csv(path, sep="\t", index=False)
    config["path"] = str(path)
    with pytest.raises(InputError, match="months"):
        read_clinical(config, NO_COVARIATES)


@pytest.mark.parametrize(
    "values, hint", [(["1", "2"], "1/2 coding"), (["dead", "alive"], "event_values")]
)
def test_event_coding_must_be_zero_one(tmp_path, values, hint):
    path = tmp_path / "clinical.tsv"
    pd.DataFrame(
        {
            "patient_id": ["a", "b", "c"],
            "time": [10, 20, 30],
            "event": [values[0], values[1], values[0]],
        }
    ).to_csv(path, sep="\t", index=False)
    with pytest.raises(InputError, match=hint):
        read_clinical(clinical_config(path, time_unit="days"), NO_COVARIATES)


def test_event_mapping_accepts_text_codes(tmp_path):
    path = tmp_path / "clinical.tsv"
    pd.DataFrame(
        {
            "patient_id": ["a", "b", "c"],
            "time": [10, 20, 30],
            "event": ["dead", "alive", "dead"],
        }
    ).to_csv(path, sep="\t", index=False)
    config = clinical_config(
        path, time_unit="days", event_values={"dead": 1, "alive": 0}
    )
    clinical = read_clinical(config, NO_COVARIATES)
    assert clinical.event.tolist() == [1, 0, 1]


def test_c11_separation_reported_not_estimable_score_kept():
    frame = pd.read_csv(CASES / "C11.tsv", sep="\t")
    row = case_table(frame).iloc[0]
    assert row.fit_status == "infinite"
    assert row.log_hr == np.inf
    assert np.isnan(row.se)
    assert row.u == pytest.approx(2.34231, abs=1e-5)
    assert row.v == pytest.approx(0.49052, abs=1e-5)
    assert row.u**2 / row.v == pytest.approx(11.18493, abs=1e-5)


def test_c11_pooled_wald_left_out_for_infinite_fit():
    frame = pd.read_csv(CASES / "C11.tsv", sep="\t")
    table = case_table(frame)
    table.insert(0, "site", "S1")
    pooled = pool_kind(table, 1).iloc[0]
    assert pooled.n_sites_infinite == 1
    assert pooled.n_sites_fit == 0
    assert np.isnan(pooled.p_fe)
    assert pooled.p == pytest.approx(0.000825, abs=5e-6)


def test_c13_sites_without_events_or_carriers_send_zero():
    site_a = pd.read_csv(CASES / "C13.siteA.tsv", sep="\t")
    site_b = pd.read_csv(CASES / "C13.siteB.tsv", sep="\t")
    site_c = pd.read_csv(CASES / "C13.siteC.tsv", sep="\t")
    tables = []
    for name, frame in (("A", site_a), ("B", site_b), ("C", site_c)):
        table = case_table(frame, strata=frame.stratum.to_numpy())
        table.insert(0, "site", name)
        tables.append(table)
    a, b, c = (t.iloc[0] for t in tables)
    assert a.status == "ok"
    assert a.u == pytest.approx(1.16667, abs=1e-5)
    assert a.v == pytest.approx(1.45222, abs=1e-5)
    assert b.status == "no_carriers"
    assert c.status == "no_events"
    for row in (b, c):
        assert row.u == 0.0
        assert row.v == 0.0
        assert np.isnan(row.log_hr)
    pooled = pool_kind(pd.concat(tables, ignore_index=True), 3).iloc[0]
    assert pooled.sites_tested == "A"
    assert pooled.z == pytest.approx(0.968, abs=5e-4)
    assert pooled.p == pytest.approx(0.333, abs=5e-4)
    assert pooled.n_sites_fit <= 1


def test_c13_thresholds_applied_and_reported():
    site_a = pd.read_csv(CASES / "C13.siteA.tsv", sep="\t")
    table = case_table(site_a, strata=site_a.stratum.to_numpy())
    policy = {"min_events": 3, "min_carriers": 7, "min_noncarriers": 3, "min_cell": 3}
    released, summary = apply_policy(table, "mutation", policy)
    row = released.iloc[0]
    assert row.status == "suppressed"
    assert row.reason == "fewer than 7 carriers"
    assert np.isnan(row.u)
    assert pd.isna(row.n_carriers)
    assert summary["suppressed"] == {"fewer than 7 carriers": 1}


@pytest.mark.parametrize(
    "kind, values, events, rule",
    [
        # One measured patient (no event among those with a value): its value
        # would be sum_x.
        ("expression", [6.96] + [np.nan] * 11, [0] * 6 + [1] * 6, "events"),
        # Two measured patients: sum_x and sum_x2 would give both values.
        ("expression", [2.0, 5.0] + [np.nan] * 10, [0, 0] + [0, 1] * 5, "events"),
        # Mutated in every patient: no non-carriers, so status "constant".
        ("mutation", [1.0] * 12, [1, 0] * 6, "non-carriers"),
    ],
)
def test_untestable_rows_withheld_like_tested_ones(kind, values, events, rule):
    frame = pd.DataFrame(
        {
            "patient": [f"P{i}" for i in range(12)],
            "time": np.arange(1.0, 13.0),
            "event": events,
            "biomarker": values,
        }
    )
    table = case_table(frame, kind=kind)
    assert table.status.iloc[0] != "ok"
    policy = {"min_events": 3, "min_carriers": 3, "min_noncarriers": 3, "min_cell": 3}
    released, _ = apply_policy(table, kind, policy)
    row = released.iloc[0]
    assert row.status == "suppressed"
    assert rule in row.reason
    for column in ("sum_x", "sum_x2", "u", "v"):
        assert np.isnan(row[column])
    for column in ("n", "n_events", "n_carriers"):
        assert pd.isna(row[column])
