"""Malformed inputs stop with an error that names the file, the row and the fix."""

from __future__ import annotations

import gzip

import pytest

from naipo_bio.errors import ConfigError, InputError, MergeError
from naipo_bio.io.vcf import checked_records, open_variant_file
from naipo_bio.merge.run import run_merge
from naipo_bio.security.keys import read_registry
from naipo_bio.site.km import read_request
from naipo_bio.site.prepare import check_input_files

VCF = (
    "##fileformat=VCFv4.2\n##contig=<ID=1,length=1000>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\n"
    "1\t10\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t0/0\n"
)


def test_unparsable_vcf_record_named(tmp_path):
    path = tmp_path / "somatic.vcf"
    path.write_text(VCF + "1\t20\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n")
    with open_variant_file(path) as handle:
        with pytest.raises(
            InputError, match="somatic.vcf cannot be read after record 1:10"
        ):
            list(checked_records(handle, path))


def test_plain_gzip_vcf_rejected(tmp_path):
    path = tmp_path / "calls.vcf.gz"
    path.write_bytes(gzip.compress(VCF.encode()))
    with pytest.raises(InputError, match="plain gzip, not bgzip"):
        open_variant_file(path)


def test_missing_input_files_listed(tmp_path):
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text("patient_id\ttime\tevent\n")
    site = {
        "clinical": {"path": str(clinical)},
        "somatic": {"maf": str(tmp_path / "a.maf"), "maf_samples": "nowhere.txt"},
    }
    with pytest.raises(InputError) as info:
        check_input_files(site, "h1")
    message = str(info.value)
    assert "sites.h1.somatic.maf = " in message
    assert "sites.h1.somatic.maf_samples = nowhere.txt" in message
    assert "clinical" not in message


REQUEST = "kind\tbiomarker_id\tlabel\tcut\treason\n"


@pytest.mark.parametrize(
    "rows, message",
    [
        ("expression\tMKI67|4288\tMKI67\tabc\ttop hit\n", "line 2: the cut of"),
        ("expression\tMKI67|4288\tMKI67\t\ttop hit\n", "not a finite number"),
        ("methylation\tcg1\tcg1\t0.5\ttop hit\n", "unknown biomarker kind"),
        (
            "mutation\tTP53\tTP53\t\tconfigured\nmutation\tTP53\tTP53\t\ttop hit\n",
            "'TP53' is requested more than once",
        ),
    ],
)
def test_bad_km_request_rejected(tmp_path, rows, message):
    path = tmp_path / "km_request.tsv"
    path.write_text(REQUEST + rows)
    with pytest.raises(InputError, match=message):
        read_request(path)


def test_km_request_mutation_needs_no_cut(tmp_path):
    path = tmp_path / "km_request.tsv"
    path.write_text(REQUEST + "mutation\tTP53\tTP53\t\tconfigured\n")
    assert read_request(path).biomarker_id.tolist() == ["TP53"]


def test_registry_not_yaml_rejected(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("sites: [unclosed\n")
    with pytest.raises(
        ConfigError, match="registry.yaml: the key registry is not valid"
    ):
        read_registry(path)


def test_merge_output_that_is_a_file_rejected(tmp_path):
    out = tmp_path / "pooled"
    out.write_text("")
    with pytest.raises(MergeError, match="is a file; name a folder"):
        run_merge([], out)
