"""Input failure cases: duplicate samples and near-miss ids (C05) and their kind."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from conftest import CASES
from naipo_bio.config import validate_config
from naipo_bio.errors import ConfigError, InputError
from naipo_bio.io.clinical import read_clinical
from naipo_bio.io.expression import read_expression
from naipo_bio.io.ids import join_patients, read_sample_map, samples_to_patients
from naipo_bio.io.vcf import open_variant_file
from naipo_bio.site.run import run_site


def test_c05_duplicate_vcf_sample_names_rejected():
    with pytest.raises(InputError) as info:
        open_variant_file(CASES / "C05.vcf")
    message = str(info.value)
    assert "'P001'" in message
    assert "C05.vcf" in message
    assert "columns 1 and 3" in message


def test_c05_duplicate_sample_rejected_in_bgzipped_vcf(tmp_path):
    import pysam

    path = tmp_path / "dup.vcf.gz"
    pysam.tabix_compress(str(CASES / "C05.vcf"), str(path))
    with pytest.raises(InputError, match="'P001'"):
        open_variant_file(path)


def test_c05_duplicate_sample_rejected_in_expression(tmp_path):
    path = tmp_path / "expression.tsv"
    path.write_text("gene_id\tP001\tP002\tP001\nENSG00000141510\t1\t2\t3\n")
    with pytest.raises(InputError, match="'P001'"):
        read_expression({"path": str(path)})


def test_c05_ids_join_exactly_with_near_miss_hints():
    clinical = read_clinical(
        {"path": str(CASES / "C05.clinical.tsv"), "columns": {"time": "time_days"},
         "time_unit": "days", "event_values": {}},
        {"covariates": [], "stratify_by": []},
    )  # fmt: skip
    assert list(clinical.patient_ids) == ["P001 ", "p002", "P003", "P004"]
    join = join_patients(
        clinical.patient_ids, {"VCF": np.array(["P001", "P002", "P004"])}
    )
    assert list(join.patients) == ["P004"]
    hints = " ".join(join.hints)
    assert "'P001'" in hints
    assert "'P001 '" in hints
    assert "'P002'" in hints
    assert "'p002'" in hints
    assert "VCF (no clinical row)" in " ".join(join.report_lines())


def test_c05_site_stops_when_too_few_patients_join(tmp_path):
    expression = tmp_path / "expression.tsv"
    expression.write_text("gene_id\tP001\tP002\tP004\nENSG00000141510\t5.1\t6.2\t7.3\n")
    config = {
        "analysis": {"id": "c05"},
        "sites": {
            "s1": {
                "clinical": {"path": str(CASES / "C05.clinical.tsv"),
                             "columns": {"time": "time_days"}, "time_unit": "days"},
                "expression": {"path": str(expression), "scale": "log2"},
            }
        },
    }  # fmt: skip
    validate_config(config)
    with pytest.raises(InputError, match="join") as info:
        run_site("s1", config, tmp_path / "s1.naipo", tmp_path / "report")
    assert "1 of 4" in str(info.value)
    assert not (tmp_path / "s1.naipo").exists()
    report = (tmp_path / "report" / "join_report.tsv").read_text()
    assert "P001" in report


def test_two_samples_of_one_patient_rejected(tmp_path):
    path = tmp_path / "map.tsv"
    path.write_text("sample\tpatient\nS1\tP1\nS2\tP1\n")
    sample_map = read_sample_map({"path": str(path)})
    with pytest.raises(InputError, match="both belong to patient 'P1'"):
        samples_to_patients(["S1", "S2"], sample_map, "expr.tsv", "expression data")


def test_repeated_clinical_patient_rejected_with_lines(tmp_path):
    path = tmp_path / "clinical.tsv"
    path.write_text("patient_id\ttime\tevent\nA\t1\t1\nB\t2\t0\nA\t3\t1\n")
    with pytest.raises(InputError, match=r"'A' appears on lines \[2, 4\]"):
        read_clinical(
            {"path": str(path), "columns": {}, "time_unit": "days", "event_values": {}},
            {"covariates": [], "stratify_by": []},
        )


def test_missing_column_named_with_columns_found(tmp_path):
    path = tmp_path / "clinical.tsv"
    path.write_text("id\ttime\tevent\nA\t1\t1\n")
    with pytest.raises(InputError, match="patient_id -> 'patient_id'") as info:
        read_clinical(
            {"path": str(path), "columns": {}, "time_unit": "days", "event_values": {}},
            {"covariates": [], "stratify_by": []},
        )
    assert "'id'" in str(info.value)


@pytest.mark.parametrize("value", ["sixty", "inf", "-Infinity"])
def test_non_numeric_covariate_named(tmp_path, value):
    path = tmp_path / "clinical.tsv"
    path.write_text(f"patient_id\ttime\tevent\tage\nA\t1\t1\t60\nB\t2\t0\t{value}\n")
    with pytest.raises(InputError, match=f"'{value}' for patient\\(s\\) 'B'"):
        read_clinical(
            {"path": str(path), "columns": {}, "time_unit": "days", "event_values": {}},
            {"covariates": [{"name": "age", "type": "numeric"}], "stratify_by": []},
        )


def test_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "clinical.tsv"
    path.write_text("patient_id\ttime\tevent\nA\t1\t1\n\n\nA\t2\t0\n")
    settings = {
        "path": str(path),
        "columns": {},
        "time_unit": "days",
        "event_values": {},
    }
    with pytest.raises(InputError, match="'A' appears on lines \\[2, 5\\]"):
        read_clinical(settings, {"covariates": [], "stratify_by": []})


def test_yes_no_event_values_need_quotes(tmp_path):
    path = tmp_path / "clinical.tsv"
    path.write_text("patient_id\ttime\tevent\nA\t1\tyes\nB\t2\tno\n")
    settings = {"path": str(path), "columns": {}, "time_unit": "days",
                "event_values": {True: 1, False: 0}}  # fmt: skip
    with pytest.raises(InputError, match="Quote them"):
        read_clinical(settings, {"covariates": [], "stratify_by": []})


def test_absent_reference_level_named_with_levels_present(tmp_path):
    path = tmp_path / "clinical.tsv"
    path.write_text(
        "patient_id\ttime\tevent\tstage\nA\t1\t1\tstage i\nB\t2\t0\tstage ii\n"
    )
    settings = {
        "path": str(path),
        "columns": {},
        "time_unit": "days",
        "event_values": {},
    }
    stage = {"name": "stage", "type": "categorical", "reference": "I"}
    with pytest.raises(InputError) as info:
        read_clinical(settings, {"covariates": [stage], "stratify_by": []})
    message = str(info.value)
    assert "'I'" in message
    assert "'stage i', 'stage ii'" in message
    assert "clinical.tsv" in message
    stage["reference"] = "stage ii"
    clinical = read_clinical(settings, {"covariates": [stage], "stratify_by": []})
    assert "stage[stage i]" in str(clinical)


def test_config_errors_name_the_key():
    config = {"analysis": {"id": "x", "ties": "exact"}}
    with pytest.raises(ConfigError, match="analysis/ties"):
        validate_config(copy.deepcopy(config))
    with pytest.raises(ConfigError, match="time unit"):
        validate_config(
            {"analysis": {"id": "x"}, "sites": {"s": {"clinical": {"path": "c.tsv"}}}}
        )


def test_config_defaults_filled():
    config = validate_config({"analysis": {"id": "x"}})
    assert config["analysis"]["ties"] == "breslow"
    assert config["analysis"]["disclosure"]["min_carriers"] == 3
    assert config["merge"]["enabled"] is True
    assert config["outdir"] == "results"


def test_expression_duplicate_genes_excluded_not_summed(tmp_path):
    path = tmp_path / "expression.tsv"
    pd.DataFrame(
        {"gene_id": ["ENSG00000141510.16", "ENSG00000141510.17", "ENSG00000012048"],
         "a": [1.0, 2.0, 3.0], "b": [2.0, 3.0, 4.0]}
    ).to_csv(path, sep="\t", index=False)  # fmt: skip
    with pytest.warns(match="ENSG00000141510"):
        expression = read_expression({"path": str(path), "scale": "log2"})
    assert expression.gene_ids == ["ENSG00000012048"]
