"""Gene-level tests: federated blocks equal a centralized computation on the
pooled genotypes; mixture-of-chi-square tails against exact values and R."""

from __future__ import annotations

import subprocess
import warnings

import numpy as np
import pandas as pd
import pysam
import pytest
from scipy import integrate, stats
from statsmodels.duration.hazard_regression import PHReg

from conftest import needs
from naipo_bio.config import validate_config
from naipo_bio.merge.run import run_merge
from naipo_bio.site.run import run_site
from naipo_bio.stats.genetests import beta_weights, gene_tests
from naipo_bio.stats.quadform import imhof_sf, mixture_sf, saddlepoint_sf

GENES = {"GENE1": 8, "GENE2": 5}
SWAPPED_AT_SITE2 = ("GENE1", 2)  # site 2 writes this variant with REF and ALT swapped


def simulate(seed=5):
    """Three sites; rare variants in two genes; hazard rises with GENE1 burden."""
    rng = np.random.default_rng(seed)
    variants = []
    pos = 1_000_000
    for gene, k in GENES.items():
        for _ in range(k):
            pos += 1000
            variants.append((gene, pos, rng.uniform(0.004, 0.03)))
    sites = []
    for index, n in enumerate((160, 130, 110)):
        G = np.column_stack([rng.binomial(2, maf, n) for _, _, maf in variants]).astype(
            float
        )
        age = rng.normal(60, 8, n)
        burden = G[:, : GENES["GENE1"]].sum(axis=1)
        latent = rng.exponential(
            800 * np.exp(-(0.03 * (age - 60) + 0.8 * burden)) * (1 + index / 2)
        )
        censor = rng.uniform(200, 2000, n)
        sites.append(
            {
                "samples": [f"S{index}_{i:03d}" for i in range(n)],
                "G": G, "age": age.round(1),
                "time": np.round(np.minimum(latent, censor)) + 1,
                "event": (latent <= censor).astype(int),
            }
        )  # fmt: skip
    return variants, sites


def write_site(folder, number, variants, site):
    folder.mkdir(parents=True, exist_ok=True)
    header = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=7,length=159138663>",
        '##INFO=<ID=CSQ,Number=.,Type=String,Description="VEP. Format: Allele|Consequence|IMPACT|SYMBOL|Gene">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(
            [
                "#CHROM",
                "POS",
                "ID",
                "REF",
                "ALT",
                "QUAL",
                "FILTER",
                "INFO",
                "FORMAT",
                *site["samples"],
            ]
        ),
    ]
    codes = {0: "0/0", 1: "0/1", 2: "1/1"}
    lines = []
    gene_counter = {}
    for j, (gene, pos, _) in enumerate(variants):
        gene_counter[gene] = gene_counter.get(gene, 0) + 1
        ref, alt = "C", "T"
        dosage = site["G"][:, j].astype(int)
        if number == 2 and (gene, gene_counter[gene] - 1) == SWAPPED_AT_SITE2:
            ref, alt = "T", "C"
            dosage = 2 - dosage
        csq = f"CSQ={alt}|missense_variant|MODERATE|{gene}|ENSG_{gene}"
        lines.append(
            "\t".join(
                [
                    "7",
                    str(pos),
                    ".",
                    ref,
                    alt,
                    ".",
                    "PASS",
                    csq,
                    "GT",
                    *(codes[d] for d in dosage),
                ]
            )
        )
    vcf = folder / "germline.vcf"
    vcf.write_text("\n".join(header + lines) + "\n")
    gz = pysam.tabix_index(str(vcf), preset="vcf", force=True)
    clinical = folder / "clinical.tsv"
    pd.DataFrame(
        {
            "sample": site["samples"],
            "time": site["time"],
            "event": site["event"],
            "age": site["age"],
        }
    ).to_csv(clinical, sep="\t", index=False)
    return {
        "clinical": {
            "path": str(clinical),
            "columns": {"patient_id": "sample"},
            "time_unit": "days",
        },
        "germline": {"vcf": gz},
    }


@pytest.fixture(scope="module")
def federated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("genes")
    variants, sites = simulate()
    config = validate_config(
        {
            "outdir": str(tmp),
            "analysis": {
                "id": "gene-test", "genome_build": "GRCh37",
                "covariates": [{"name": "age", "type": "numeric"}],
                "variants": {"qc": {"min_call_rate": 0.0, "min_mac": 1, "min_hwe_p": 0.0},
                             "chunk_size": 500_000},
            },
            "sites": {
                f"site{i + 1}": write_site(tmp / f"site{i + 1}", i + 1, variants, site)
                for i, site in enumerate(sites)
            },
        }
    )  # fmt: skip
    bundles = []
    for site_id in config["sites"]:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            bundles.append(run_site(site_id, config, tmp / f"{site_id}.naipo"))
    run_merge(bundles, tmp / "merge", variant_settings={"rare_maf": 0.05})
    table = pd.read_csv(
        tmp / "merge" / "tables" / "gene_tests.tsv", sep="\t"
    ).set_index("gene")
    return variants, sites, table


def centralized(variants, sites, gene):
    """Efficient score vector and covariance of a gene's variants from pooled
    genotypes: statsmodels PHReg at (0, gamma_hat), strata = site, age by site."""
    columns = [j for j, (g, _, _) in enumerate(variants) if g == gene]
    G = np.vstack([s["G"][:, columns] for s in sites])
    site = np.concatenate([np.full(len(s["time"]), i) for i, s in enumerate(sites)])
    age = np.concatenate([s["age"] for s in sites])
    time = np.concatenate([s["time"] for s in sites])
    event = np.concatenate([s["event"] for s in sites])
    X = np.column_stack([age * (site == i) for i in range(len(sites))])
    null = PHReg(time, X, status=event, strata=site, ties="breslow").fit()
    model = PHReg(
        time, np.column_stack([G, X]), status=event, strata=site, ties="breslow"
    )
    params = np.concatenate([np.zeros(len(columns)), null.params])
    score = model.score(params)
    info = -model.hessian(params)
    k = len(columns)
    V = info[:k, :k] - info[:k, k:] @ np.linalg.solve(info[k:, k:], info[k:, :k])
    maf = G.mean(axis=0) / 2
    maf = np.minimum(maf, 1 - maf)
    return score[:k], V, maf


@pytest.mark.parametrize("gene", sorted(GENES))
def test_gene_tests_equal_centralized(federated, gene):
    variants, sites, table = federated
    U, V, maf = centralized(variants, sites, gene)
    keep = maf > 0
    expected = gene_tests(U[keep], V[np.ix_(keep, keep)], beta_weights(maf[keep]))
    row = table.loc[gene]
    assert row.status == "tested"
    assert row.n_variants_tested == keep.sum()
    assert row.burden_stat == pytest.approx(expected.burden_stat, rel=1e-8)
    assert row.burden_p == pytest.approx(expected.burden_p, rel=1e-7)
    assert row.skat_stat == pytest.approx(expected.skat_stat, rel=1e-8)
    assert row.skat_p == pytest.approx(expected.skat_p, rel=1e-6)
    assert row.skato_p == pytest.approx(expected.skato_p, rel=1e-6)


def test_gene_with_effect_detected(federated):
    _, _, table = federated
    assert table.loc["GENE1", "burden_p"] < 1e-3
    assert table.loc["GENE1", "skato_p"] < 1e-3


def exact_two_term(q, a, b):
    """P(a X + b Y > q) for independent chi-square(1) X, Y by one integral."""
    if q <= 0:
        return 1.0
    inner = integrate.quad(
        lambda x: stats.chi2.pdf(x, 1) * stats.chi2.sf(max(q - a * x, 0) / b, 1),
        0, q / a, limit=500, epsabs=1e-16, epsrel=1e-12,
    )[0]  # fmt: skip
    return inner + stats.chi2.sf(q / a, 1)


@pytest.mark.parametrize("q", [0.5, 3.0, 12.0, 40.0, 90.0])
def test_imhof_equals_exact_two_term(q):
    assert imhof_sf(q, np.array([4.0, 0.7])) == pytest.approx(
        exact_two_term(q, 4.0, 0.7), rel=1e-6
    )


def test_equal_weights_give_chi_square_tail():
    assert mixture_sf(30.0, np.full(5, 2.0)) == pytest.approx(
        stats.chi2.sf(15.0, 5), rel=1e-12
    )
    assert imhof_sf(30.0, np.full(5, 2.0)) == pytest.approx(
        stats.chi2.sf(15.0, 5), rel=1e-7
    )


@needs("Rscript")
@pytest.mark.needs_r
def test_saddlepoint_equals_r_survey():
    if subprocess.run(
        ["Rscript", "-e", "library(survey)"], capture_output=True
    ).returncode:
        pytest.skip("R package survey is not installed")
    weights = [3, 1, 0.5, 0.2]
    q = [2.0, 8.0, 25.0, 60.0]
    script = (
        "suppressMessages(library(survey));"
        f"cat(pchisqsum(c({','.join(map(str, q))}), df=rep(1,4), a=c({','.join(map(str, weights))}),"
        "lower.tail=FALSE, method='saddlepoint'), sep='\\n')"
    )
    out = subprocess.run(
        ["Rscript", "-e", script], capture_output=True, text=True, check=True
    )
    expected = np.array(out.stdout.split(), dtype=float)
    ours = saddlepoint_sf(np.array(q), np.array(weights))
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_gene_tests_calibrated_under_null():
    rng = np.random.default_rng(11)
    k = 6
    A = rng.normal(size=(k, k))
    V = A @ A.T / k + 0.3 * np.eye(k)
    L = np.linalg.cholesky(V)
    w = beta_weights(rng.uniform(0.001, 0.02, k))
    p = np.array([
        [getattr(gene_tests(L @ rng.normal(size=k), V, w), name) for name in ("burden_p", "skat_p", "skato_p")]
        for _ in range(400)
    ])  # fmt: skip
    rejection = (p < 0.05).mean(axis=0)
    # 400 draws: the 99.9% band of a binomial(400, 0.05) rate is about 0.02-0.09.
    assert np.all(rejection > 0.02)
    assert np.all(rejection < 0.09)


THREE_WEIGHTS = np.array([4.0, 0.7, 0.05])


@pytest.fixture(scope="module")
def exact_three():
    return exact_three_term(30.0, *THREE_WEIGHTS)


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e3, 1e6])
def test_imhof_unchanged_by_scale(scale, exact_three):
    ours = imhof_sf(30.0 * scale, THREE_WEIGHTS * scale)
    assert ours == pytest.approx(exact_three, rel=1e-6)


def exact_three_term(q, a, b, c):
    """P(aX + bY + cZ > q) by conditioning on X (two-term tail inside)."""
    inner = integrate.quad(
        lambda x: stats.chi2.pdf(x, 1) * exact_two_term(q - a * x, b, c), 0, q / a,
        limit=200, epsabs=1e-14, epsrel=1e-10,
    )[0]  # fmt: skip
    return inner + stats.chi2.sf(q / a, 1)
