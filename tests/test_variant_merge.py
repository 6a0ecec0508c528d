"""Per-variant statistics through site stage and merge: R on real 1000 Genomes
genotypes, allele harmonization (C15), contig naming (C06), overlap (C17)."""

from __future__ import annotations

import copy
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import CASES, REFERENCE, REPO
from naipo_bio.bundle.read import read_bundle
from naipo_bio.config import validate_config
from naipo_bio.demo import germline_1kg
from naipo_bio.errors import MergeError
from naipo_bio.merge.harmonize import read_reference_sites
from naipo_bio.merge.run import run_merge
from naipo_bio.merge.variants import VariantSettings, pool_window
from naipo_bio.site.run import run_site
from naipo_bio.stats import _reference

RESOURCES = REPO / "resources" / "1kg-vcf-slices"
OPEN_POLICY = {
    "min_site_patients": 1, "min_site_events": 1, "min_events": 0,
    "min_carriers": 0, "min_noncarriers": 0, "min_cell": 1,
}  # fmt: skip
ALL_FILTERS = ["PASS", "VQSRTrancheSNP99.80to100.00", "VQSRTrancheINDEL99.00to100.00"]


def germline_config(outdir, sites, **variants):
    analysis = {
        "id": "test-1kg",
        "genome_build": "GRCh38",
        "covariates": [
            {"name": "age", "type": "numeric"},
            {"name": "sex", "type": "categorical", "reference": "female"},
        ],
        "variants": {
            "filters": ALL_FILTERS,
            "qc": {"min_call_rate": 0.0, "min_mac": 1, "min_hwe_p": 0.0},
            "gene_tests": {"enabled": False},
            **variants,
        },
        "disclosure": dict(OPEN_POLICY),
    }
    return validate_config(
        {"outdir": str(outdir), "analysis": analysis, "sites": sites}
    )


def run_sites(config, outdir):
    bundles = []
    for site in config["sites"]:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            bundles.append(run_site(site, config, outdir / f"{site}.naipo"))
    return bundles


def clinical_site(path, vcf):
    return {
        "clinical": {
            "path": str(path),
            "columns": {
                "patient_id": "sample",
                "time": "followup_days",
                "age": "age_years",
            },
            "time_unit": "days",
        },
        "germline": {"vcf": str(vcf)},
    }


@pytest.fixture(scope="module")
def one_site_bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one")
    clinical = germline_1kg.simulated_clinical(RESOURCES)
    clinical.to_csv(tmp / "clinical.tsv", sep="\t", index=False)
    config = germline_config(
        tmp, {"all": clinical_site(tmp / "clinical.tsv", RESOURCES / "chr22.vcf.gz")}
    )
    (bundle,) = run_sites(config, tmp)
    return read_bundle(bundle).table("variant")


def keyed(table):
    keys = (
        table.contig.astype(str)
        + ":"
        + table.pos.astype(str)
        + ":"
        + table.ref
        + ":"
        + table.alt
    )
    return table.set_index(keys)


def test_one_site_variants_equal_r(one_site_bundle):
    reference = pd.read_csv(
        REFERENCE / "reference_1kg_one_site.tsv", sep="\t"
    ).set_index("variant")
    ours = keyed(one_site_bundle.loc[one_site_bundle.status == "ok"])
    assert set(ours.index) == set(reference.index)
    for variant, row in reference.iterrows():
        assert ours.loc[variant, "u"] == pytest.approx(row.U, rel=1e-8, abs=1e-10)
        assert ours.loc[variant, "v"] == pytest.approx(row.V, rel=1e-8)


def test_one_site_variants_equal_numpy_reference(one_site_bundle):
    data = pd.read_csv(REFERENCE / "1kg_one_site.tsv", sep="\t")
    X = np.column_stack([data.age_years, data.male]).astype(float)
    X = X - X.mean(axis=0)
    from naipo_bio.stats import cox

    design = cox.SurvivalDesign.from_arrays(data.followup_days, data.event, X)
    null = cox.fit_null(design)
    w = np.exp(X @ null.gamma)
    ours = keyed(one_site_bundle.loc[one_site_bundle.status == "ok"])
    strata = np.zeros(len(data))
    for variant in ours.index:
        u, v = _reference.score_information(
            data[variant].to_numpy(float), data.followup_days.to_numpy(float),
            data.event.to_numpy(), strata, w, X,
        )  # fmt: skip
        assert ours.loc[variant, "u"] == pytest.approx(u, rel=1e-9, abs=1e-10)
        assert ours.loc[variant, "v"] == pytest.approx(v, rel=1e-9)


@pytest.fixture(scope="module")
def three_site_merge(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("three")
    sites = {}
    for number in (1, 2, 3):
        folder = tmp / "inputs" / f"site{number}"
        germline_1kg.prepare_site(RESOURCES, number, 3, folder)
        sites[f"site{number}"] = clinical_site(
            folder / "clinical.tsv", folder / "germline.vcf.gz"
        )
    config = germline_config(tmp, sites)
    bundles = run_sites(config, tmp)
    run_merge(bundles, tmp / "merge", variant_settings={"min_pooled_mac": 10})
    pooled = pd.read_csv(
        tmp / "merge" / "tables" / "associations.variant.tsv", sep="\t"
    )
    pooled.attrs["bundles"] = bundles
    pooled.attrs["inputs"] = tmp / "inputs"
    return pooled


def test_germline_bundles_hold_no_sample_id(three_site_merge):
    import pysam

    from test_demo import assert_no_identifier

    inputs = three_site_merge.attrs["inputs"]
    ids = set()
    for folder in inputs.iterdir():
        with pysam.VariantFile(str(folder / "germline.vcf.gz")) as vcf:
            ids |= set(vcf.header.samples)
        ids |= set(pd.read_csv(folder / "clinical.tsv", sep="\t", dtype=str)["sample"])
    assert_no_identifier(three_site_merge.attrs["bundles"], ids)


def test_three_sites_pooled_equal_r_stratified(three_site_merge):
    reference = pd.read_csv(
        REFERENCE / "reference_1kg_three_sites.tsv", sep="\t"
    ).set_index("variant")
    pooled = keyed(three_site_merge.loc[three_site_merge.v > 0])
    assert set(pooled.index) == set(reference.index)
    for variant, row in reference.iterrows():
        assert pooled.loc[variant, "u"] == pytest.approx(row.U, rel=1e-8, abs=1e-10)
        assert pooled.loc[variant, "v"] == pytest.approx(row.V, rel=1e-8)
        assert pooled.loc[variant, "p"] == pytest.approx(row.p, rel=1e-7)


def test_low_pooled_mac_flagged(three_site_merge):
    tested = three_site_merge.loc[three_site_merge.p.notna()]
    assert (tested.low_mac == (tested.mac < 10)).all()
    assert tested.low_mac.any()
    assert (~tested.low_mac).any()


def c15_rows():
    frames = []
    for site in "ABC":
        frame = pd.read_csv(
            CASES / f"C15.site{site}.tsv", sep="\t", dtype={"chrom": str}
        )
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True).rename(
        columns={"chrom": "contig", "U": "u", "V": "v"}
    )
    rows["status"] = "ok"
    rows["ac"] = np.nan
    rows["an"] = np.nan
    return rows


@pytest.mark.parametrize("with_reference", [True, False])
def test_c15_allele_flips_harmonized(with_reference):
    reference = (
        read_reference_sites(CASES / "C15.reference_sites.vcf")
        if with_reference
        else None
    )
    pooled = pool_window(
        c15_rows(), VariantSettings(reference=reference), {"A": 0, "B": 1, "C": 2}
    )
    assert len(pooled) == 1
    row = pooled.iloc[0]
    assert (row.ref, row.alt) == ("G", "A")
    assert row.u == pytest.approx(6.8)
    assert row.v == pytest.approx(9.0)
    assert row.z == pytest.approx(2.267, abs=5e-4)
    assert row.p == pytest.approx(0.0234, abs=5e-5)
    assert row.het_q == pytest.approx(0.017, abs=5e-4)
    assert row.n_sites_tested == 3
    assert row.n_sites_swapped == 1
    assert row.n_sites_strand_flipped == 1


def test_palindromic_variant_matched_as_written_and_dropped_when_common():
    rows = pd.DataFrame(
        {
            "site": ["A", "B"], "contig": ["1", "1"], "pos": [500, 500],
            "ref": ["A", "T"], "alt": ["T", "A"], "status": ["ok", "ok"],
            "u": [1.0, 2.0], "v": [2.0, 2.0], "ac": [90.0, 110.0], "an": [200.0, 200.0],
            "n": [100, 100],
        }
    )  # fmt: skip
    pooled = pool_window(
        rows, VariantSettings(ambiguous_max_maf=0.4), {"A": 0, "B": 1}
    ).iloc[0]
    assert pooled.palindromic
    assert (
        pooled.n_sites_swapped == 1
    )  # T>A at site B is A>T swapped, not the other strand
    assert pooled.u == pytest.approx(1.0 - 2.0)
    assert pooled.ambiguous_dropped  # pooled MAF 0.45 > 0.4
    assert np.isnan(pooled.p)


def write_c06_site(tmp, name):
    vcf = tmp / f"{name}.vcf"
    shutil.copy(CASES / f"C06.{name}.vcf", vcf)
    samples = [
        line for line in vcf.read_text().splitlines() if line.startswith("#CHROM")
    ][0].split("\t")[9:]
    clinical = tmp / f"{name}.clinical.tsv"
    pd.DataFrame(
        {"sample": samples, "followup_days": [100, 200, 300], "event": [1, 0, 1],
         "age_years": [50, 60, 70], "sex": ["female", "male", "female"]}
    ).to_csv(clinical, sep="\t", index=False)  # fmt: skip
    site = clinical_site(clinical, vcf)
    site["germline"]["gene_bed"] = str(CASES / "C06.regions.tsv")
    return site


def test_c06_contig_names_aliased_regions_and_absent_contig(tmp_path):
    sites = {name: write_c06_site(tmp_path, name) for name in ("siteA", "siteB")}
    config = germline_config(
        tmp_path,
        sites,
        gene_tests={"enabled": True, "source": "bed", "max_site_maf": 0.5},
    )
    config["analysis"]["covariates"] = []
    bundles = run_sites(config, tmp_path)
    for bundle in bundles:
        summary = read_bundle(bundle).manifest["disclosure"]["summary"]["variant"]
        assert summary["regions_on_absent_contigs"] == ["BM3"]
    run_merge(bundles, tmp_path / "merge", variant_settings={"rare_maf": 0.5})
    pooled = pd.read_csv(
        tmp_path / "merge" / "tables" / "associations.variant.tsv",
        sep="\t",
        dtype={"contig": str},
    )
    assert sorted(zip(pooled.contig, pooled.pos, strict=True)) == [
        ("1", 1000),
        ("2", 5000),
    ]
    assert (pooled.n_sites_present == 2).all()
    genes = pd.read_csv(
        tmp_path / "merge" / "tables" / "gene_tests.tsv", sep="\t"
    ).set_index("gene")
    assert set(genes.index) == {"BM1", "BM2", "BM3"}
    assert genes.loc["BM3", "status"] == "contig absent at every site"
    assert genes.loc["BM1", "n_sites"] == 2


def test_zero_overlap_between_sites_is_an_error(tmp_path):
    sites = {name: write_c06_site(tmp_path, name) for name in ("siteA", "siteB")}
    config = germline_config(tmp_path, sites)
    config["analysis"]["covariates"] = []
    bundles = run_sites(config, tmp_path)
    # Move site B's variants away by rewriting its VCF onto another position.
    text = (
        (tmp_path / "siteB.vcf")
        .read_text()
        .replace("chr1\t1000", "chr1\t1001")
        .replace("chr2\t5000", "chr2\t5001")
    )
    (tmp_path / "siteB.vcf").write_text(text)
    bundles[1] = run_site("siteB", copy.deepcopy(config), tmp_path / "siteB.naipo")
    with pytest.raises(MergeError, match="genome builds"):
        run_merge(bundles, tmp_path / "merge")
    assert not (tmp_path / "merge" / "tables" / "associations.variant.tsv").exists()


def edit_first(column, value):
    def change(rows):
        rows.loc[0, column] = value
        return rows

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (edit_first("u", np.inf), "without a finite U and V"),
        (edit_first("v", 0.0), "V <= 0"),
        (edit_first("status", "banana"), "unknown status 'banana'"),
        (lambda rows: pd.concat([rows, rows.iloc[:1]], ignore_index=True), "twice"),
    ],
)
def test_edited_variant_rows_rejected(change, message):
    with pytest.raises(MergeError, match=message):
        pool_window(change(c15_rows()), VariantSettings(), {"A": 0, "B": 1, "C": 2})
