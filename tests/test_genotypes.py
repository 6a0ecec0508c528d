"""Genotype decoding: dosages, allele counts, multi-allelic records, policies."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pysam
import pytest

from conftest import CASES, needs
from naipo_bio.errors import InputError
from naipo_bio.genotypes import _dosage
from naipo_bio.genotypes.qc import hwe_pvalues
from naipo_bio.genotypes.reader import GenotypeFile, GenotypeOptions

HEADER = (
    "##fileformat=VCFv4.2\n##contig=<ID=1,length=249250621>\n##contig=<ID=X,length=155270560>\n"
    '##FILTER=<ID=LowQual,Description="low">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=DS,Number=A,Type=Float,Description="Dosage">\n'
    '##FORMAT=<ID=GP,Number=G,Type=Float,Description="Genotype probabilities">\n'
)


def vcf_text(samples, records):
    columns = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(
        samples
    )
    return HEADER + columns + "\n" + "".join("\t".join(r) + "\n" for r in records)


def decode(path, options=None, build=None):
    """All tests of a file: list of (pos, ref, alt, dosage, counts)."""
    gfile = GenotypeFile(path, build, options or GenotypeOptions())
    out = []
    for region in gfile.regions(0):
        for block in gfile.blocks(region, np.arange(len(gfile.samples))):
            for i in range(len(block.pos)):
                out.append(
                    (
                        int(block.pos[i]),
                        block.ref[i],
                        block.alt[i],
                        block.dosage[i],
                        block.counts[i],
                    )
                )
    return out


def dosage_list(values):
    return [None if math.isnan(v) else float(v) for v in values]


def test_c01_half_missing_default_policy():
    tests = decode(CASES / "C01.vcf")
    assert dosage_list(tests[0][3]) == [0, None, None, 1, 2, None, None, 1]
    counts = tests[0][4]
    assert counts[_dosage.COUNT_AN] == 10
    assert counts[_dosage.COUNT_AC] == 6
    assert counts[_dosage.COUNT_HALF] == 2  # "./1" and "1/."; "." is a missing call
    assert tests[1][4][_dosage.COUNT_AN] == 11
    assert tests[1][4][_dosage.COUNT_AC] == 4


def test_c01_carrier_policy():
    tests = decode(CASES / "C01.vcf", GenotypeOptions(half_call="carrier"))
    assert dosage_list(tests[0][3]) == [0, 1, 1, 1, 2, None, None, 1]
    assert tests[0][4][_dosage.COUNT_AN] == 10  # allele counts do not change


@needs("bcftools")
@pytest.mark.needs_bcftools
def test_c01_allele_counts_equal_bcftools(tmp_path):
    result = subprocess.run(
        ["bcftools", "+fill-tags", str(CASES / "C01.vcf"), "--", "-t", "AN,AC"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = tmp_path / "tagged.vcf"
    out.write_text(result.stdout)
    ours = decode(CASES / "C01.vcf")
    for record, test in zip(pysam.VariantFile(str(out)), ours, strict=True):
        assert record.info["AN"] == test[4][_dosage.COUNT_AN]
        assert record.info["AC"][0] == test[4][_dosage.COUNT_AC]


C03_EXPECTED = {
    "C": [0, 1, 2, 1, 0, 0, None],
    "G": [0, 0, 0, 1, 2, 1, None],
}


def c03_dosages(path):
    tests = decode(path)
    return {alt: dosage_list(d) for _, _, alt, d, _ in tests}, tests


def test_c03_multiallelic_unsplit():
    dosages, tests = c03_dosages(CASES / "C03.vcf")
    assert dosages == C03_EXPECTED
    for test in tests:
        assert test[4][_dosage.COUNT_AC] / test[4][_dosage.COUNT_AN] == pytest.approx(
            4 / 12
        )


SPLIT_RECORDS = {
    # bcftools norm -m -any writes REF in place of the other ALT.
    "bcftools": (
        ["0/0", "0/1", "1/1", "1/0", "0/0", "0/0", "./."],
        ["0/0", "0/0", "0/0", "0/1", "1/1", "0/1", "./."],
    ),
    # vcfbreakmulti writes "." for the other ALT.
    "vcfbreakmulti": (
        ["0/0", "0/1", "1/1", "1/.", "./.", "0/.", "./."],
        ["0/0", "0/.", "./.", "./1", "1/1", "0/1", "./."],
    ),
}


@pytest.mark.parametrize("style", sorted(SPLIT_RECORDS))
def test_c03_presplit_records_give_same_dosages(tmp_path, style):
    first, second = SPLIT_RECORDS[style]
    samples = [f"P00{i}" for i in range(1, 8)]
    path = tmp_path / f"{style}.vcf"
    path.write_text(
        vcf_text(
            samples,
            [
                ["1", "2000", ".", "A", "C", ".", "PASS", ".", "GT", *first],
                ["1", "2000", ".", "A", "G", ".", "PASS", ".", "GT", *second],
            ],
        )
    )
    dosages, _ = c03_dosages(path)
    assert dosages == C03_EXPECTED


@needs("bcftools")
@pytest.mark.needs_bcftools
def test_c03_split_by_bcftools_gives_same_dosages(tmp_path):
    out = tmp_path / "split.vcf"
    subprocess.run(
        ["bcftools", "norm", "-m", "-any", "-o", str(out), str(CASES / "C03.vcf")],
        check=True, capture_output=True,
    )  # fmt: skip
    dosages, _ = c03_dosages(out)
    assert dosages == C03_EXPECTED


def test_phased_and_unphased_equal(tmp_path):
    path = tmp_path / "phase.vcf"
    path.write_text(
        vcf_text(
            ["a", "b", "c", "d"],
            [
                [
                    "1",
                    "10",
                    ".",
                    "A",
                    "G",
                    ".",
                    "PASS",
                    ".",
                    "GT",
                    "0|1",
                    "1|0",
                    "1|1",
                    "0|0",
                ],
                [
                    "1",
                    "11",
                    ".",
                    "A",
                    "G",
                    ".",
                    "PASS",
                    ".",
                    "GT",
                    "0/1",
                    "1/0",
                    "1/1",
                    "0/0",
                ],
            ],
        )
    )
    tests = decode(path)
    assert dosage_list(tests[0][3]) == dosage_list(tests[1][3]) == [1, 1, 2, 0]


def test_ds_preferred_then_gp_then_gt(tmp_path):
    path = tmp_path / "dose.vcf"
    path.write_text(
        vcf_text(
            ["a", "b", "c"],
            [
                [
                    "1",
                    "10",
                    ".",
                    "A",
                    "G",
                    ".",
                    "PASS",
                    ".",
                    "GT:DS",
                    "0/1:0.8",
                    "1/1:.",
                    "0/0:0.1",
                ],
                [
                    "1",
                    "11",
                    ".",
                    "A",
                    "G",
                    ".",
                    "PASS",
                    ".",
                    "GT:GP",
                    "0/1:0.1,0.6,0.3",
                    "./.:0,0,1",
                    "0/0:1,0,0",
                ],
                [
                    "1",
                    "12",
                    ".",
                    "A",
                    "G,T",
                    ".",
                    "PASS",
                    ".",
                    "GT:DS",
                    "1/2:0.9,1.1",
                    "0/0:0,0",
                    "2/2:0,1.9",
                ],
            ],
        )
    )
    tests = decode(path)
    assert dosage_list(tests[0][3]) == pytest.approx(
        [0.8, 2.0, 0.1]
    )  # DS; b falls back to GT
    assert dosage_list(tests[1][3]) == pytest.approx(
        [1.2, 2.0, 0.0]
    )  # GP: P(1) + 2 P(2)
    assert dosage_list(tests[2][3]) == pytest.approx([0.9, 0.0, 0.0])
    assert dosage_list(tests[3][3]) == pytest.approx([1.1, 0.0, 1.9])
    forced = decode(path, GenotypeOptions(dosage_field="GT"))
    assert dosage_list(forced[0][3]) == [1, 2, 0]


def test_gp_dosage_of_multiallelic_record(tmp_path):
    # Genotype order for 3 alleles: 0/0 0/1 1/1 0/2 1/2 2/2.
    path = tmp_path / "gp3.vcf"
    path.write_text(
        vcf_text(
            ["a"],
            [["1", "10", ".", "A", "G,T", ".", "PASS", ".", "GP", "0,0,0,0,1,0"]],
        )
    )
    tests = decode(path, GenotypeOptions(dosage_field="GP"))
    assert dosage_list(tests[0][3]) == [1.0]
    assert dosage_list(tests[1][3]) == [1.0]


@pytest.mark.parametrize("haploid_alt, expected", [(1, [1, 0, 1]), (2, [2, 0, 1])])
def test_haploid_calls_coded_by_rule(tmp_path, haploid_alt, expected):
    path = tmp_path / "x.vcf"
    path.write_text(
        vcf_text(
            ["male1", "male2", "female"],
            [["X", "3000000", ".", "C", "T", ".", "PASS", ".", "GT", "1", "0", "0/1"]],
        )
    )
    tests = decode(path, GenotypeOptions(haploid_alt=haploid_alt))
    assert dosage_list(tests[0][3]) == expected
    assert tests[0][4][_dosage.COUNT_HAPLOID] == 2
    assert tests[0][4][_dosage.COUNT_AN] == 4


def test_star_and_symbolic_alleles_skipped_and_counted(tmp_path):
    from naipo_bio.genotypes.reader import ReadStats

    path = tmp_path / "sym.vcf"
    path.write_text(
        vcf_text(
            ["a", "b"],
            [
                ["1", "10", ".", "A", "G,*", ".", "PASS", ".", "GT", "0/1", "1/2"],
                ["1", "20", ".", "A", "<DEL>", ".", "PASS", ".", "GT", "0/1", "0/0"],
            ],
        )
    )
    gfile = GenotypeFile(path, None, GenotypeOptions())
    stats = ReadStats()
    blocks = [b for r in gfile.regions(0) for b in gfile.blocks(r, np.arange(2), stats)]
    assert [alt for b in blocks for alt in b.alt] == ["G"]
    assert stats.star_alleles == 1
    assert stats.symbolic_alleles == 1


def test_filter_pass_only_by_default(tmp_path):
    path = tmp_path / "filter.vcf"
    path.write_text(
        vcf_text(
            ["a"],
            [
                ["1", "10", ".", "A", "G", ".", "PASS", ".", "GT", "0/1"],
                ["1", "20", ".", "A", "G", ".", "LowQual", ".", "GT", "0/1"],
                ["1", "30", ".", "A", "G", ".", ".", ".", "GT", "0/1"],
            ],
        )
    )
    assert [t[0] for t in decode(path)] == [10, 30]
    both = decode(path, GenotypeOptions(filters=frozenset({"PASS", "LowQual"})))
    assert [t[0] for t in both] == [10, 20, 30]


def test_unsorted_records_rejected(tmp_path):
    path = tmp_path / "unsorted.vcf"
    path.write_text(
        vcf_text(
            ["a"],
            [
                ["1", "20", ".", "A", "G", ".", "PASS", ".", "GT", "0/1"],
                ["1", "10", ".", "A", "G", ".", "PASS", ".", "GT", "0/1"],
            ],
        )
    )
    with pytest.raises(InputError, match="not sorted"):
        decode(path)


def test_unindexed_bgzipped_vcf_rejected(tmp_path):
    path = tmp_path / "plain.vcf"
    shutil.copy(CASES / "C01.vcf", path)
    pysam.tabix_compress(str(path), str(path) + ".gz")
    with pytest.raises(InputError, match="no index"):
        GenotypeFile(str(path) + ".gz", None, GenotypeOptions())


def test_wrong_sample_count_rejected(tmp_path):
    path = tmp_path / "short.vcf"
    path.write_text(
        vcf_text(
            ["a", "b"], [["1", "10", ".", "A", "G", ".", "PASS", ".", "GT", "0/1"]]
        )
    )
    with pytest.raises(InputError, match="1:10"):
        decode(path)


def test_bgzipped_and_bcf_give_same_dosages(tmp_path):
    plain = tmp_path / "c03.vcf"
    shutil.copy(CASES / "C03.vcf", plain)
    gz = pysam.tabix_index(str(plain), preset="vcf", force=True, keep_original=True)
    bcf = tmp_path / "c03.bcf"
    with (
        pysam.VariantFile(gz) as source,
        pysam.VariantFile(str(bcf), "wb", header=source.header) as sink,
    ):
        for record in source:
            sink.write(record)
    pysam.tabix_index(str(bcf), preset="vcf", csi=True, force=True)
    expected = c03_dosages(plain)[0]
    assert c03_dosages(gz)[0] == expected
    assert c03_dosages(bcf)[0] == expected


def hwe_brute_force(het, hom1, hom2):
    """Exact HWE p by enumerating every heterozygote count with the same allele counts."""
    n = het + hom1 + hom2
    minor = 2 * min(hom1, hom2) + het
    probs = {}
    for h in range(minor % 2, minor + 1, 2):
        r = (minor - h) // 2
        c = n - h - r
        if c < 0:
            continue
        log_p = (
            math.lgamma(n + 1) - math.lgamma(h + 1) - math.lgamma(r + 1) - math.lgamma(c + 1)
            + h * math.log(2) + math.lgamma(minor + 1) + math.lgamma(2 * n - minor + 1)
            - math.lgamma(2 * n + 1)
        )  # fmt: skip
        probs[h] = math.exp(log_p)
    observed = probs[het]
    return min(1.0, sum(p for p in probs.values() if p <= observed * (1 + 1e-8)))


@pytest.mark.parametrize(
    "het, hom1, hom2",
    [(57, 14, 29), (0, 50, 50), (10, 85, 5), (1, 98, 1), (30, 35, 35), (3, 0, 97)],
)
def test_hwe_exact_equals_enumeration(het, hom1, hom2):
    out = np.empty(1)
    hwe_pvalues(
        np.array([hom1], float), np.array([het], float), np.array([hom2], float), out
    )
    assert out[0] == pytest.approx(hwe_brute_force(het, hom1, hom2), rel=1e-9)


def test_c17_declared_build_checked_against_header():
    with pytest.raises(InputError) as info:
        GenotypeFile(CASES / "C17.siteA.vcf", "GRCh38", GenotypeOptions())
    message = str(info.value)
    assert "'chr1'" in message
    assert "249,250,621" in message
    assert "248,956,422" in message
    assert "GRCh37" in message
    GenotypeFile(CASES / "C17.siteB.vcf", "GRCh38", GenotypeOptions())


def test_hwe_exact_random_tables_equal_enumeration():
    """Tables in and far out of equilibrium, including p-values near 1e-80."""
    rng = np.random.default_rng(0)
    for _ in range(150):
        n = int(rng.integers(5, 2500))
        p = rng.uniform(0.005, 0.5)
        if rng.random() < 0.5:
            probs = [(1 - p) ** 2, 2 * p * (1 - p), p * p]
        else:
            probs = [
                (1 - p) ** 2 * 0.9,
                2 * p * (1 - p) + 0.1 * (1 - p) ** 2 - 0.05,
                0.05,
            ]
        hom_ref, het, hom_alt = (
            int(x) for x in rng.multinomial(n, np.array(probs) / sum(probs))
        )
        out = np.empty(1)
        hwe_pvalues(
            np.array([hom_ref], float),
            np.array([het], float),
            np.array([hom_alt], float),
            out,
        )
        assert out[0] == pytest.approx(hwe_brute_force(het, hom_ref, hom_alt), rel=1e-9)


def test_sex_check_flags_mismatch(tmp_path):
    import warnings as warnings_module

    from naipo_bio.config import validate_config
    from naipo_bio.errors import DataQualityWarning
    from naipo_bio.site.run import run_site

    samples = ["m1", "m2", "f1", "f2", "swapped"]
    records = []
    for i, pos in enumerate(range(3_000_000, 3_000_000 + 40 * 1000, 1000)):
        calls = [
            "1" if i % 3 == 0 else "0",
            "0",
            "0/1" if i % 2 else "0/0",
            "0/1" if i % 3 else "1/1",
            "1",
        ]
        records.append(["X", str(pos), ".", "C", "T", ".", "PASS", ".", "GT", *calls])
    vcf = tmp_path / "x.vcf"
    vcf.write_text(vcf_text(samples, records))
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text(
        "patient_id\ttime\tevent\tsex\n"
        "m1\t100\t1\tmale\nm2\t200\t0\tM\nf1\t300\t1\tfemale\nf2\t400\t1\tF\nswapped\t500\t1\tfemale\n"
    )
    config = validate_config(
        {
            "analysis": {
                "id": "sex", "genome_build": "GRCh37",
                "variants": {"sex_check": "sex", "qc": {"min_call_rate": 0, "min_hwe_p": 0},
                             "gene_tests": {"enabled": False}},
                "disclosure": {"min_site_patients": 1, "min_site_events": 1, "min_carriers": 0,
                               "min_noncarriers": 0, "min_cell": 1},
            },
            "sites": {"s": {"clinical": {"path": str(clinical), "time_unit": "days"},
                            "germline": {"vcf": str(vcf)}}},
        }
    )  # fmt: skip
    with warnings_module.catch_warnings(record=True) as caught:
        warnings_module.simplefilter("always")
        bundle = run_site("s", config, tmp_path / "s.naipo")
    messages = [
        str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)
    ]
    assert any("swapped" in m for m in messages)
    from naipo_bio.bundle.read import read_bundle

    assert read_bundle(bundle).manifest["checks"]["sex"] == {
        "checked": 5,
        "mismatched": 1,
        "unknown_sex": 0,
    }


def test_presplit_haploid_records_read_dot_as_another_alt(tmp_path):
    """A haploid multi-allelic call split into biallelic records (the other
    ALT written as "."): the "." is a zero dosage unless no record has a call."""
    path = tmp_path / "split_x.vcf"
    path.write_text(
        vcf_text(
            ["a", "b", "c", "d"],
            [
                ["X", "100", ".", "A", "G", ".", "PASS", ".", "GT", "1", ".", "0", "."],
                ["X", "100", ".", "A", "T", ".", "PASS", ".", "GT", ".", "1", "0", "."],
            ],
        )
    )
    tests = decode(path)
    assert dosage_list(tests[0][3]) == [1, 0, 0, None]
    assert dosage_list(tests[1][3]) == [0, 1, 0, None]
    assert tests[0][4][_dosage.COUNT_HAPLOID] == 3


@pytest.mark.parametrize(
    "fmt, call, message",
    [
        ("GT", "0/7", "GT allele index above its 1 ALT allele\\(s\\) for sample 'b'"),
        ("GT:DS", "0/1:7.5", "DS dosage outside \\[0, 2\\] for sample 'b' \\(7.5\\)"),
        ("GT:DS", "0/1:-3", "DS dosage outside \\[0, 2\\] for sample 'b' \\(-3\\)"),
        ("GP", "0.5,0.9,0.9", "GP dosage outside \\[0, 2\\] for sample 'b' \\(2.7\\)"),
    ],
)
def test_impossible_genotype_value_named(tmp_path, fmt, call, message):
    good = {"GT": "0/1", "GT:DS": "0/1:1", "GP": "1,0,0"}[fmt]
    path = tmp_path / "bad.vcf"
    path.write_text(
        vcf_text(
            ["a", "b"], [["1", "10", ".", "A", "G", ".", "PASS", ".", fmt, good, call]]
        )
    )
    with pytest.raises(InputError, match=f"record 1:10 has a {message}"):
        decode(path)


def test_plain_vcf_without_contig_lines_read(tmp_path):
    """Contigs come from the records when the header declares none."""
    path = tmp_path / "bare.vcf"
    text = vcf_text(
        ["a", "b"],
        [
            ["22", "100", ".", "A", "G", ".", "PASS", ".", "GT", "0/1", "1/1"],
            ["22", "200", ".", "C", "T", ".", "PASS", ".", "GT", "0/0", "0/1"],
        ],
    )
    path.write_text(
        "".join(line + "\n" for line in text.splitlines() if "contig" not in line)
    )
    gfile = GenotypeFile(path, None, GenotypeOptions())
    assert [r.contig for r in gfile.regions(1000)] == ["22"]
    assert [t[0] for t in decode(path)] == [100, 200]


@pytest.mark.parametrize("compress", [False, True])
def test_record_beyond_header_length_rejected(tmp_path, compress):
    path = tmp_path / "short.vcf"
    header = HEADER.replace("ID=X,length=155270560", "ID=X,length=1000")
    records = [
        ["X", str(p), ".", "A", "G", ".", "PASS", ".", "GT", "0/1"] for p in (500, 1500)
    ]
    path.write_text(
        header
        + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\n"
        + "".join("\t".join(r) + "\n" for r in records)
    )
    if compress:
        path = pysam.tabix_index(str(path), preset="vcf", force=True)
    gfile = GenotypeFile(path, None, GenotypeOptions())
    with pytest.raises(InputError, match="X:1,500 lies beyond .* header \\(1,000\\)"):
        gfile.regions(100)


def test_repeated_variant_record_stops_site(tmp_path):
    """Two records of one variant would count its scores twice when pooled."""
    from naipo_bio.config import validate_config
    from naipo_bio.site.run import run_site

    samples = [f"p{i}" for i in range(6)]
    calls = ["0/1", "0/0", "1/1", "0/1", "0/0", "0/1"]
    records = [
        ["1", "100", ".", "A", "G", ".", "PASS", ".", "GT", *calls],
        ["1", "200", ".", "C", "T", ".", "PASS", ".", "GT", *calls],
        ["1", "200", ".", "C", "T", ".", "PASS", ".", "GT", *calls],
    ]
    vcf = tmp_path / "dup.vcf"
    vcf.write_text(vcf_text(samples, records))
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text(
        "patient_id\ttime\tevent\n"
        + "".join(f"p{i}\t{100 * (i + 1)}\t{i % 2}\n" for i in range(6))
    )
    config = validate_config(
        {
            "analysis": {
                "id": "dup",
                "variants": {"qc": {"min_call_rate": 0, "min_hwe_p": 0},
                             "gene_tests": {"enabled": False}},
                "disclosure": {"min_site_patients": 1, "min_site_events": 1,
                               "min_carriers": 0, "min_noncarriers": 0, "min_cell": 1},
            },
            "sites": {"s": {"clinical": {"path": str(clinical), "time_unit": "days"},
                            "germline": {"vcf": str(vcf)}}},
        }
    )  # fmt: skip
    with pytest.raises(InputError, match="1:200 C>T occurs in more than one record"):
        run_site("s", config, tmp_path / "s.naipo")
    assert not (tmp_path / "s.naipo").exists()


@pytest.mark.parametrize(
    "fmt, call",
    [("GT", "0/x"), ("GT:DS", "0/1:abc"), ("GT", "0/1/1")],
)
def test_unparsable_call_names_its_sample(tmp_path, fmt, call):
    good = {"GT": "0/1", "GT:DS": "0/1:1"}[fmt]
    path = tmp_path / "bad.vcf"
    path.write_text(
        vcf_text(
            ["a", "b", "c"],
            [["1", "10", ".", "A", "G", ".", "PASS", ".", fmt, good, call, good]],
        )
    )
    with pytest.raises(InputError, match="record 1:10 has .*\\(sample 'b'\\)"):
        decode(path)
