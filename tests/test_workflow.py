"""The Snakemake workflow and the command line, run as a user runs them."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import DEMO_RESOURCES, REPO
from naipo_bio.cli import main


def demo_config(tmp_path, **changes):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["outdir"] = "out"
    config["demo"]["resources"] = str(DEMO_RESOURCES)
    config.update(changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(tmp_path, *args):
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
        "--cores", "2", "--directory", str(tmp_path), *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_demo_workflow_runs_every_rule_with_a_log(tmp_path):
    config = demo_config(tmp_path)
    result = snakemake(tmp_path, "--configfile", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    for site in ("site1", "site2", "site3"):
        assert (out / "bundles" / f"{site}.naipo" / "manifest.json").exists()
        assert (out / "logs" / "site" / f"{site}.log").stat().st_size > 0
        assert (out / "logs" / "demo_inputs" / f"{site}.log").exists()
    assert (out / "logs" / "merge.log").stat().st_size > 0
    table = pd.read_csv(
        out / "merge" / "tables" / "associations.mutation.tsv", sep="\t"
    )
    assert table.iloc[0].biomarker_id == "TP53"
    again = snakemake(tmp_path, "--configfile", str(config), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_workflow_lint_reports_only_missing_environments(tmp_path):
    config = demo_config(tmp_path)
    result = snakemake(tmp_path, "--configfile", str(config), "--lint")
    output = result.stdout + result.stderr
    lints = [line.strip() for line in output.splitlines() if line.startswith("    * ")]
    assert lints
    assert all(line.startswith("* Specify a conda environment") for line in lints), (
        lints
    )


def test_invalid_config_stops_before_any_job(tmp_path):
    config = demo_config(tmp_path, analysis={"id": "x", "ties": "exact"})
    result = snakemake(tmp_path, "--configfile", str(config), "-n")
    assert result.returncode != 0
    assert "analysis/ties" in result.stderr + result.stdout


def test_cli_site_and_merge(tmp_path, demo_run, capsys):
    assert (
        main(["merge", *map(str, demo_run.bundles), "--out", str(tmp_path / "m")]) == 0
    )
    assert (tmp_path / "m" / "report.html").exists()
    assert (
        main(
            [
                "merge",
                str(demo_run.bundles[0]),
                str(demo_run.bundles[0]),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "more than one bundle" in capsys.readouterr().err


def test_cli_check_config(capsys):
    assert main(["check-config", str(REPO / "config" / "config.yaml")]) == 0
    assert "sha256:" in capsys.readouterr().out


@pytest.mark.slow
def test_germline_demo_workflow_scatters_chunks(tmp_path):
    config = yaml.safe_load((REPO / "config" / "germline.yaml").read_text())
    config["outdir"] = "out"
    config["demo"]["resources"] = str(REPO / "resources" / "1kg-vcf-slices")
    path = tmp_path / "germline.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    chunks = sorted((out / "sites" / "site1" / "chunks").iterdir())
    assert [c.name for c in chunks] == [
        "chr22_1_20000000.variants.parquet",
        "chr22_20000001_40000000.variants.parquet",
        "chr22_40000001_50818468.variants.parquet",
    ]  # the genotype side files are temporary and gone
    assert len(list((out / "logs" / "variant_chunk" / "site1").iterdir())) == 3
    table = pd.read_csv(out / "merge" / "tables" / "associations.variant.tsv", sep="\t")
    top = table.loc[table.p.idxmin()]
    assert (top.pos, top.ref, top.alt) == (10511391, "T", "A")  # the simulated effect
    assert (out / "merge" / "plots" / "manhattan.variant.png").exists()
