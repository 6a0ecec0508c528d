"""The TCGA ACC demo: pooled results equal a centralized analysis of the same
patients, and no identifier of the inputs appears in any bundle."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from statsmodels.duration.hazard_regression import PHReg

from conftest import DEMO_RESOURCES
from naipo_bio.bundle.read import read_bundle

NONSYNONYMOUS = {
    "Missense_Mutation", "Nonsense_Mutation", "Frame_Shift_Del", "Frame_Shift_Ins",
    "Splice_Site", "In_Frame_Del", "In_Frame_Ins", "Nonstop_Mutation",
    "Translation_Start_Site",
}  # fmt: skip


@pytest.fixture(scope="module")
def centralized():
    """The 77 analysable patients built straight from the resource tables."""
    clinical = pd.read_csv(
        DEMO_RESOURCES / "ACC.clinical.20160128.tsv.gz", sep="\t", dtype=str
    )
    maf = pd.read_csv(
        DEMO_RESOURCES / "ACC.mutations.20160128.maf.tsv.gz", sep="\t", dtype=str
    )
    rna = pd.read_csv(
        DEMO_RESOURCES / "ACC.rnaseq_RSEM_genes_normalized.20160128.tsv.gz",
        sep="\t",
        index_col=0,
    )
    frame = pd.DataFrame(
        {
            "patient": clinical["patient.bcr_patient_barcode"].str.upper(),
            "dead": clinical["patient.vital_status"] == "dead",
            "age": clinical[
                "patient.primary_pathology.age_at_initial_pathologic_diagnosis"
            ].astype(float),
            "male": (clinical["patient.gender"] == "male").astype(float),
        }
    )
    frame["time"] = np.where(
        frame.dead,
        clinical["patient.days_to_death"],
        clinical["patient.days_to_last_followup"],
    ).astype(float)
    frame["event"] = frame.dead.astype(int)
    mutated = set(
        maf.loc[
            maf.Variant_Classification.isin(NONSYNONYMOUS)
            & (maf.Hugo_Symbol == "TP53"),
            "Tumor_Sample_Barcode",
        ].str[:12]
    )
    sequenced = set(maf.Tumor_Sample_Barcode.str[:12])
    rna.columns = rna.columns.str[:12]
    frame = frame.loc[
        frame.patient.isin(sequenced) & frame.patient.isin(rna.columns)
    ].copy()
    frame["TP53"] = frame.patient.isin(mutated).astype(float)
    frame["MKI67"] = np.log2(rna.loc["MKI67|4288", frame.patient].to_numpy(float) + 1)
    frame["site"] = [
        int(hashlib.sha256(p.encode()).hexdigest(), 16) % 3 + 1 for p in frame.patient
    ]
    return frame


def centralized_score(frame, biomarker):
    site = frame.site.to_numpy()
    covariates = np.column_stack(
        [frame[c].to_numpy() * (site == s) for s in (1, 2, 3) for c in ("age", "male")]
    )
    time = frame.time.to_numpy()
    event = frame.event.to_numpy()
    null = PHReg(time, covariates, status=event, strata=site, ties="breslow").fit()
    full = PHReg(
        time,
        np.column_stack([frame[biomarker], covariates]),
        status=event,
        strata=site,
        ties="breslow",
    )  # fmt: skip
    params = np.concatenate([[0.0], null.params])
    info = -full.hessian(params)
    v = info[0, 0] - info[0, 1:] @ np.linalg.solve(info[1:, 1:], info[1:, 0])
    return full.score(params)[0], v


def test_demo_analysis_set(demo_run, centralized):
    counts = {
        s["site"]: (s["patients"], s["events"]) for s in demo_run.summary["sites"]
    }
    assert counts == {"site1": (32, 12), "site2": (20, 6), "site3": (25, 6)}
    assert len(centralized) == 77
    assert centralized.event.sum() == 24


@pytest.mark.parametrize(
    "kind, biomarker_id, column",
    [("mutation", "TP53", "TP53"), ("expression", "MKI67|4288", "MKI67")],
)
def test_demo_pooled_equals_centralized(
    demo_run, centralized, kind, biomarker_id, column
):
    table = pd.read_csv(
        demo_run.merge_dir / "tables" / f"associations.{kind}.tsv", sep="\t"
    )
    row = table.loc[table.biomarker_id == biomarker_id].iloc[0]
    assert row.n_sites_tested == 3
    u, v = centralized_score(centralized, column)
    assert row.u == pytest.approx(u, rel=1e-8)
    assert row.v == pytest.approx(v, rel=1e-8)
    assert row.p < 1e-3


def test_demo_site_fits_equal_statsmodels(demo_run, centralized):
    sites = pd.read_csv(
        demo_run.merge_dir / "tables" / "site_estimates.mutation.tsv", sep="\t"
    )
    for number in (1, 2, 3):
        part = centralized.loc[centralized.site == number]
        exog = part[["TP53", "age", "male"]].to_numpy()
        reference = PHReg(part.time, exog, status=part.event, ties="breslow").fit()
        row = sites.loc[
            (sites.site == f"site{number}") & (sites.biomarker_id == "TP53")
        ].iloc[0]
        assert row.log_hr == pytest.approx(reference.params[0], abs=1e-6)
        assert row.se == pytest.approx(reference.bse[0], abs=1e-6)


def test_demo_outputs_written(demo_run):
    merge = demo_run.merge_dir
    for kind in ("mutation", "expression"):
        assert (merge / "tables" / f"associations.{kind}.tsv").stat().st_size > 0
        assert (merge / "plots" / f"qq.{kind}.png").stat().st_size > 0
    assert list((merge / "plots").glob("forest.mutation.TP53.png"))
    report = (merge / "report.html").read_text()
    assert "TP53" in report
    assert "Breslow" in report
    assert not list(merge.rglob(".*.tmp-*"))


def identifiers():
    """Every patient id and sample barcode of the demo inputs, in both cases."""
    clinical = pd.read_csv(
        DEMO_RESOURCES / "ACC.clinical.20160128.tsv.gz", sep="\t", dtype=str
    )
    maf = pd.read_csv(
        DEMO_RESOURCES / "ACC.mutations.20160128.maf.tsv.gz", sep="\t", dtype=str
    )
    header = pd.read_csv(
        DEMO_RESOURCES / "ACC.rnaseq_RSEM_genes_normalized.20160128.tsv.gz",
        sep="\t",
        nrows=0,
    )
    values = set(clinical["patient.bcr_patient_barcode"])
    values |= set(maf.Tumor_Sample_Barcode) | set(maf.Matched_Norm_Sample_Barcode)
    values |= set(header.columns[1:])
    values |= {v[:12] for v in values}
    values |= set(maf.Tumor_Sample_UUID) | set(
        clinical["patient.bcr_patient_uuid"].dropna()
    )
    return {v for value in values for v in (value.upper(), value.lower())}


def test_bundles_hold_no_identifier(demo_run):
    assert_no_identifier(demo_run.bundles)


def assert_no_identifier(bundle_paths, ids=None):
    """Scan every byte of every file, and the decoded Parquet metadata, schema
    and values, for any patient id or sample barcode (default: the demo's)."""
    ids = identifiers() if ids is None else ids
    assert len(ids) >= 50
    id_bytes = [i.encode() for i in ids]
    for bundle_path in bundle_paths:
        bundle = read_bundle(bundle_path)
        texts = [json.dumps(bundle.manifest)]
        for file in bundle_path.iterdir():
            raw = file.read_bytes()
            hits = [i for i in id_bytes if i in raw]
            assert not hits, f"{file} contains {hits[:3]}"
            if file.suffix == ".parquet":
                parquet = pq.ParquetFile(file)
                texts.append(str(parquet.metadata.metadata))
                texts.append(str(parquet.schema_arrow))
                table = parquet.read()
                for column in table.column_names:
                    texts.extend(map(str, table.column(column).to_pylist()))
        joined = "\n".join(texts)
        hits = [i for i in ids if i in joined]
        assert not hits, f"{bundle_path} contains {hits[:3]}"


def test_bundles_hold_no_exact_event_time(demo_run, centralized):
    """No value in a bundle equals a patient's follow-up time."""
    times = set(centralized.time.astype(float))
    for bundle_path in demo_run.bundles:
        bundle = read_bundle(bundle_path)
        for kind in bundle.kinds:
            table = bundle.table(kind)
            for column in ("u", "v", "log_hr", "se", "sum_x", "sum_x2"):
                assert not set(table[column].dropna().astype(float)) & times
