"""Expression inputs (C19, C20), single-cell pseudobulk, pooled Kaplan-Meier
curves against lifelines and the stratified log-rank test against R."""

from __future__ import annotations

import warnings

import anndata
import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from conftest import CASES, DATA, REFERENCE, simulate_sites
from naipo_bio.bundle.read import read_bundle
from naipo_bio.config import validate_config
from naipo_bio.errors import DataQualityWarning, InputError
from naipo_bio.io.expression import read_expression
from naipo_bio.io.singlecell import read_single_cell
from naipo_bio.merge.pool import pool_kind, site_table
from naipo_bio.site.run import run_site
from naipo_bio.stats.histogram import coarse_histogram, pooled_quantile
from naipo_bio.stats.km import (
    coarsen,
    km_counts,
    logrank_parts,
    logrank_test,
    pooled_curve,
    truncate_at_risk,
)

OPEN_POLICY = {
    "min_site_patients": 1, "min_site_events": 1, "min_events": 0, "min_carriers": 0,
    "min_noncarriers": 0, "min_cell": 1, "km_min_at_risk": 1,
}  # fmt: skip


def test_pooled_km_equals_lifelines_on_coarsened_times():
    data = simulate_sites(3, tie_grid=None)
    group = np.where(data["g_bin"] > 0, "mutated", "wild type")
    parts = []
    for site in np.unique(data["site"]):
        m = data["site"] == site
        counts = km_counts(data["time"][m], data["event"][m], group[m], width=30)
        parts.append(counts.assign(site=site))
    curve = pooled_curve(pd.concat(parts, ignore_index=True))
    coarse = coarsen(data["time"], 30)
    for label in ("mutated", "wild type"):
        m = group == label
        fitter = KaplanMeierFitter().fit(coarse[m], data["event"][m])
        ours = curve.loc[curve.group == label].set_index("time")
        theirs = fitter.survival_function_.iloc[:, 0]
        bands = fitter.confidence_interval_
        for t, row in ours.iterrows():
            assert row.survival == pytest.approx(theirs.loc[t], rel=1e-12)
            if 0 < row.survival < 1:
                assert row.lower == pytest.approx(bands.loc[t].iloc[0], rel=1e-9)
                assert row.upper == pytest.approx(bands.loc[t].iloc[1], rel=1e-9)
        assert ours.at_risk.iloc[0] == fitter.event_table.at_risk.loc[ours.index[0]]


@pytest.mark.parametrize("biomarker", ["g_bin", "g_dose"])
def test_stratified_logrank_equals_r_survdiff(biomarker):
    data = pd.read_csv(REFERENCE / "synthetic_sites.tsv", sep="\t")
    reference = pd.read_csv(REFERENCE / "reference_logrank.tsv", sep="\t").set_index(
        "biomarker"
    )
    groups = sorted(data[biomarker].unique())
    parts = [
        logrank_parts(rows.time, rows.event, rows[biomarker], groups)
        for _, rows in data.groupby("site")
    ]
    chi2, df, p = logrank_test(parts)
    row = reference.loc[biomarker]
    assert chi2 == pytest.approx(row.chisq, rel=1e-9)
    assert df == row.df
    observed = sum(part.observed for part in parts)
    expected = sum(part.expected for part in parts)
    np.testing.assert_allclose(observed, [float(x) for x in row.observed.split(",")])
    np.testing.assert_allclose(
        expected, [float(x) for x in row.expected.split(",")], rtol=1e-12
    )


def test_truncation_censors_the_last_patients_at_risk():
    time = np.array([10, 40, 70, 100, 130, 160, 190])
    event = np.array([1, 1, 0, 1, 1, 0, 1])
    counts = km_counts(time, event, np.array(["a"] * 7), width=30)
    truncated = truncate_at_risk(counts, 4)
    # At risk: 7, 6, 5, 4, 3 ... the row where 3 remain becomes 3 censored.
    assert truncated.time.tolist() == [30, 60, 90, 120, 150]
    assert truncated.events.tolist() == [1, 1, 0, 1, 0]
    assert truncated.censored.tolist() == [0, 0, 1, 0, 3]
    assert (truncated.events + truncated.censored).sum() == 7


def test_histogram_bins_hold_min_cell_and_give_the_pooled_median():
    rng = np.random.default_rng(4)
    sites = [
        rng.normal(8 + shift, 1.5, n) for shift, n in ((0, 60), (0.5, 45), (-0.3, 80))
    ]
    frames = []
    for values in sites:
        bins = coarse_histogram(values, 0.25, 3)
        assert all(count >= 3 for _, _, count in bins)
        assert sum(count for _, _, count in bins) == len(values)
        frames.append(pd.DataFrame(bins, columns=["low", "high", "count"]))
    cut = pooled_quantile(pd.concat(frames), 0.5)
    assert abs(cut - np.median(np.concatenate(sites))) < 0.25


def make_cells(tmp_path, counts_dtype=np.int64, barcodes=None):
    rng = np.random.default_rng(0)
    patients = ["p1"] * 30 + ["p2"] * 25 + ["p3"] * 8
    types = (["T"] * 20 + ["B"] * 10) + (["T"] * 12 + ["B"] * 13) + (["T"] * 8)
    X = rng.poisson(2.0, size=(len(patients), 6)).astype(counts_dtype)
    obs = pd.DataFrame(
        {"patient": patients, "cell_type": types},
        index=barcodes or [f"cell{i}" for i in range(len(patients))],
    )
    adata = anndata.AnnData(
        X=X, obs=obs, var=pd.DataFrame(index=[f"G{i}" for i in range(6)])
    )
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path, X, patients, types


def test_pseudobulk_equals_hand_sums(tmp_path):
    path, X, patients, types = make_cells(tmp_path)
    result = read_single_cell({"path": str(path), "patient_column": "patient",
                               "cell_type_column": "cell_type", "min_cells": 10})  # fmt: skip
    table = pd.DataFrame(
        result.pseudobulk, index=result.pseudobulk_ids, columns=result.patients
    )
    for patient in ("p1", "p2"):
        for cell_type in ("B", "T"):
            rows = [
                i
                for i, (p, t) in enumerate(zip(patients, types, strict=True))
                if p == patient and t == cell_type
            ]
            summed = X[rows].sum(axis=0).astype(float)
            expected = np.log2(summed / summed.sum() * 1e6 + 1)
            ours = table.loc[
                [f"{cell_type}::G{g}" for g in range(6)], patient
            ].to_numpy()
            np.testing.assert_allclose(ours, expected, rtol=1e-12)
    # p3 has 8 T cells (< min_cells) and no B cells: both missing.
    assert table.loc[[f"T::G{g}" for g in range(6)], "p3"].isna().all()
    assert table.loc[[f"B::G{g}" for g in range(6)], "p3"].isna().all()
    proportions = pd.DataFrame(
        result.proportions, index=result.proportion_ids, columns=result.patients
    )
    assert proportions.loc["T", "p1"] == pytest.approx(20 / 30)
    assert proportions.loc["B", "p2"] == pytest.approx(13 / 25)
    assert proportions.loc["T", "p3"] == pytest.approx(1.0)


def test_single_cell_barcode_collision_rejected(tmp_path):
    barcodes = [f"cell{i % 40}" for i in range(63)]
    path, *_ = make_cells(tmp_path, barcodes=barcodes)
    with pytest.raises(InputError, match="collide across samples"):
        read_single_cell(
            {
                "path": str(path),
                "patient_column": "patient",
                "cell_type_column": "cell_type",
            }
        )


def test_single_cell_rejects_normalized_values(tmp_path):
    path, *_ = make_cells(tmp_path, counts_dtype=np.float64)
    adata = anndata.read_h5ad(path)
    adata.X = np.log1p(adata.X)
    adata.write_h5ad(path)
    with pytest.raises(InputError, match="raw counts"):
        read_single_cell(
            {
                "path": str(path),
                "patient_column": "patient",
                "cell_type_column": "cell_type",
            }
        )


SINGLE_CELL = {"patient_column": "patient", "cell_type_column": "cell_type"}


def test_single_cell_nan_count_named(tmp_path):
    path, *_ = make_cells(tmp_path, counts_dtype=np.float64)
    adata = anndata.read_h5ad(path)
    adata.X[5, 2] = np.nan
    adata.write_h5ad(path)
    with pytest.raises(InputError, match="cell 'cell5', gene 'G2' has nan"):
        read_single_cell({"path": str(path), **SINGLE_CELL})


def test_single_cell_repeated_genes_excluded(tmp_path):
    path, X, *_ = make_cells(tmp_path)
    adata = anndata.read_h5ad(path)
    adata.var_names = ["G0", "G1", "G1", "G3", "G4", "G5"]
    adata.write_h5ad(path)
    with pytest.warns(DataQualityWarning, match="excluded .*\\['G1'\\]"):
        result = read_single_cell({"path": str(path), **SINGLE_CELL, "min_cells": 10})
    assert len(result.pseudobulk_ids) == len(set(result.pseudobulk_ids))
    assert not any(i.endswith("::G1") for i in result.pseudobulk_ids)
    assert "T::G0" in result.pseudobulk_ids


def c20_site(tmp_path, site: str) -> str:
    frame = pd.read_csv(CASES / "C20.expression_by_site.tsv", sep="\t", dtype=str)
    row = frame.loc[frame.site == site].drop(columns=["site", "declared_scale"])
    path = tmp_path / f"{site}.tsv"
    row.to_csv(path, sep="\t", index=False)
    return str(path)


def test_c20_declared_scales_checked(tmp_path):
    accepted = read_expression({"path": c20_site(tmp_path, "A"), "scale": "counts"})
    assert accepted.scale == "counts"
    with pytest.raises(InputError, match="look log-transformed"):
        read_expression({"path": c20_site(tmp_path, "B"), "scale": "counts"})
    with pytest.raises(
        InputError,
        match=r"not integers \(first at gene .*, sample .*\(value .*estimated_counts",
    ):
        read_expression({"path": c20_site(tmp_path, "C"), "scale": "counts"})
    estimated = read_expression(
        {"path": c20_site(tmp_path, "C"), "scale": "estimated_counts"}
    )
    assert estimated.counts["missing_values"] == 1
    logged = read_expression({"path": c20_site(tmp_path, "D"), "scale": "log2_tpm"})
    assert logged.counts["missing_values"] == 1
    np.testing.assert_allclose(logged.matrix[0, :3], [-0.41, 1.22, 0.37])
    with pytest.raises(InputError, match="negative values"):
        read_expression({"path": c20_site(tmp_path, "D"), "scale": "tpm"})


@pytest.mark.parametrize(
    "value, message",
    [
        ("-3", "negative value at gene 'G2|2', sample 'S3' \\(value -3.0\\)"),
        ("inf", "infinite expression value at gene 'G2|2', sample 'S3'"),
        ("-inf", "infinite expression value at gene 'G2|2', sample 'S3'"),
    ],
)
def test_impossible_expression_value_named(tmp_path, value, message):
    """A linear table with one bad cell is not read as log2 or silently kept."""
    path = tmp_path / "expression.tsv"
    path.write_text(
        f"gene\tS1\tS2\tS3\nG1|1\t1200.5\t83.1\t15000.2\nG2|2\t10.0\t2.5\t{value}\n"
    )
    with pytest.raises(InputError, match=message):
        read_expression({"path": str(path), "scale": "auto"})


def test_counts_become_log2_cpm_with_scanpy(tmp_path):
    result = read_expression({"path": c20_site(tmp_path, "A"), "scale": "counts"})
    # One gene: its CPM is 1e6 in every sample.
    np.testing.assert_allclose(result.matrix[0], np.log2(1e6 + 1))


def c19_config(tmp_path):
    sites = {}
    for name in ("A", "B", "C"):
        expression = CASES / f"C19.site{name}.tsv"
        samples = pd.read_csv(expression, sep="\t", nrows=0).columns[1:]
        clinical = tmp_path / f"{name}.clinical.tsv"
        pd.DataFrame(
            {"patient_id": samples, "time": np.arange(len(samples)) * 100 + 50,
             "event": [1, 0] * (len(samples) // 2) + [1] * (len(samples) % 2)}
        ).to_csv(clinical, sep="\t", index=False)  # fmt: skip
        site = {
            "clinical": {"path": str(clinical), "time_unit": "days"},
            "expression": {"path": str(expression), "scale": "linear"},
        }
        if name == "C":
            site["expression"]["gene_map"] = str(DATA / "gene_map.tsv")
        sites[f"site{name}"] = site
    return validate_config(
        {"analysis": {"id": "c19", "disclosure": dict(OPEN_POLICY)}, "sites": sites}
    )


def test_c19_gene_ids_keyed_and_flagged(tmp_path):
    config = c19_config(tmp_path)
    bundles = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for site in config["sites"]:
            bundles.append(run_site(site, config, tmp_path / f"{site}.naipo"))
    messages = " ".join(str(w.message) for w in caught)
    assert "HSPA14" in messages
    manifest = read_bundle(bundles[2]).manifest
    excluded = manifest["inputs"]["expression"]["excluded_gene_ids"]
    assert excluded["repeated symbol (ambiguous)"] == ["HSPA14"]
    assert excluded["date-like (spreadsheet conversion)"] == ["1-Mar"]
    assert excluded["suffix artifact of a mapped symbol"] == ["HSPA14-1"]
    loaded = [read_bundle(b) for b in bundles]
    pooled = pool_kind(site_table(loaded, "expression"), 3).set_index("biomarker_id")
    assert set(pooled.index) == {
        "ENSG00000141510",
        "ENSG00000012048",
        "ENSG00000187522",
    }
    assert pooled.loc["ENSG00000012048", "sites_tested"] == "siteA,siteC"
    assert pooled.loc["ENSG00000012048", "n_sites_missing"] == 1
    assert pooled.loc["ENSG00000187522", "sites_tested"] == "siteA,siteB"
    assert "ENSG00000141510.16" in pooled.loc["ENSG00000141510", "site_labels"]


def test_symbols_without_gene_map_rejected(tmp_path):
    with pytest.raises(InputError, match="gene_map"):
        read_expression({"path": str(CASES / "C19.siteC.tsv")})


def test_pooled_sd_equals_within_site_sd(demo_run):
    sites = pd.read_csv(
        demo_run.merge_dir / "tables" / "site_estimates.expression.tsv", sep="\t"
    )
    pooled = pd.read_csv(
        demo_run.merge_dir / "tables" / "associations.expression.tsv", sep="\t"
    )
    row = pooled.loc[pooled.biomarker_id == "MKI67|4288"].iloc[0]
    ok = sites.loc[(sites.biomarker_id == "MKI67|4288") & (sites.status == "ok")]
    within = (ok.sum_x2 - ok.sum_x**2 / ok.n).sum() / (ok.n.sum() - len(ok))
    # The TSV keeps 10 significant digits.
    assert row.pooled_sd == pytest.approx(np.sqrt(within), rel=1e-9)
    assert row.log_hr_fe_per_sd == pytest.approx(
        row.log_hr_fe * row.pooled_sd, rel=1e-9
    )
