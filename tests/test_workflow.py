"""The Snakemake workflow and the command line, run as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pandas as pd
import pytest
import yaml

from conftest import REPO
from naipo_bio.bundle.read import read_bundle
from naipo_bio.cli import main
from snakemake_runs import (
    assert_same_results,
    demo_config,
    snakemake,
    snakemake_command,
)


@pytest.mark.slow
def test_demo_workflow_runs_every_rule_with_a_log(plain_workflow):
    tmp_path, config, result = plain_workflow
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    for site in ("site1", "site2", "site3"):
        assert (out / "bundles" / f"{site}.naipo" / "manifest.json").exists()
        assert (out / "bundles" / f"{site}.naipo" / "signature.json").exists()
        assert (out / "sites" / site / "release_listing.txt").stat().st_size > 0
        assert (out / "sites" / site / "release_listing.km.txt").stat().st_size > 0
        assert (out / "logs" / "site" / f"{site}.log").stat().st_size > 0
        assert (out / "logs" / "demo_inputs" / f"{site}.log").exists()
    assert (out / "logs" / "merge.log").stat().st_size > 0
    table = pd.read_csv(
        out / "merge" / "tables" / "associations.mutation.tsv", sep="\t"
    )
    assert table.iloc[0].biomarker_id == "TP53"
    again = snakemake(tmp_path, "--configfile", str(config), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_secure_demo_workflow_equals_plain(plain_workflow):
    tmp_path, _, plain_result = plain_workflow
    assert plain_result.returncode == 0, plain_result.stderr[-3000:]
    config = demo_config(tmp_path, "secure.yaml", outdir="out-secure")
    result = snakemake(tmp_path, "--configfile", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    secure = tmp_path / "out-secure"
    for site in ("site1", "site2", "site3"):
        listing = (secure / "sites" / site / "release_listing.txt").read_text()
        assert "Mode: secure" in listing
    for kind in ("mutation", "expression"):
        name = f"associations.{kind}.tsv"
        plain = pd.read_csv(tmp_path / "out" / "merge" / "tables" / name, sep="\t")
        plain = plain.loc[plain.n_sites_tested > 0].set_index("biomarker_id")
        masked = pd.read_csv(secure / "merge" / "tables" / name, sep="\t")
        masked = masked.set_index("biomarker_id").loc[plain.index]
        for column in ("u", "v", "z", "p", "q"):
            assert masked[column].to_numpy() == pytest.approx(
                plain[column].to_numpy(), rel=1e-9
            )
    assert "unavailable" in (secure / "merge" / "report.html").read_text()


def test_workflow_lint_reports_only_missing_environments(tmp_path):
    config = demo_config(tmp_path)
    result = snakemake(tmp_path, "--configfile", str(config), "--lint")
    output = result.stdout + result.stderr
    lints = [line.strip() for line in output.splitlines() if line.startswith("    * ")]
    assert lints
    assert all(line.startswith("* Specify a conda environment") for line in lints), (
        lints
    )


def test_configfile_replaces_the_default_demo_config(tmp_path):
    """A --configfile is the whole configuration: none of the default demo's
    settings (its Kaplan-Meier groups, its build) may leak into another run."""
    config = demo_config(
        tmp_path, "germline.yaml", REPO / "resources" / "1kg-vcf-slices"
    )
    # A request left by an earlier run with the Kaplan-Meier round on must not
    # make a second rule claim the report.
    (tmp_path / "out" / "merge").mkdir(parents=True)
    (tmp_path / "out" / "merge" / "km_request.tsv").write_text("kind\n")
    result = snakemake(tmp_path, "--configfile", str(config), "-n")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "is extended by" not in output
    jobs = {line.split()[0] for line in output.splitlines() if line.startswith("rule ")}
    assert "rule site_bundle:" in output
    assert not any(name.startswith("km") or name == "merge_km" for name in jobs), jobs
    coordinator = {
        "outdir": "out",
        "analysis": {"id": "x", "ties": "breslow"},
        "merge": {"enabled": True, "bundles": ["in/a.naipo", "in/b.naipo"]},
    }
    path = tmp_path / "coordinator.yaml"
    path.write_text(yaml.safe_dump(coordinator))
    result = snakemake(tmp_path, "--configfile", str(path), "-n")
    output = result.stdout + result.stderr
    assert "in/a.naipo" in output  # the merge waits for the received bundles
    assert "demo_inputs" not in output
    assert "site_bundle" not in output


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
    path = demo_config(tmp_path, "germline.yaml", REPO / "resources" / "1kg-vcf-slices")
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


@pytest.mark.slow
def test_transbig_demo_workflow_with_km_round(tmp_path):
    path = demo_config(
        tmp_path, "transbig.yaml", REPO / "resources" / "transbig-gse7390"
    )
    result = snakemake(tmp_path, "--configfile", str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    merge = tmp_path / "out" / "merge"
    table = pd.read_csv(merge / "tables" / "associations.expression.tsv", sep="\t")
    assert table.n_sites_tested.max() == 3
    assert table.loc[table.p.notna()].shape[0] == 76
    request = pd.read_csv(merge / "km_request.tsv", sep="\t")
    assert "X202240_at" in set(request.biomarker_id)
    logrank = pd.read_csv(merge / "km" / "tables" / "logrank.tsv", sep="\t")
    assert (logrank.n_sites == 3).all()
    assert logrank.p.notna().all()
    report = (merge / "report.html").read_text()
    assert "Kaplan-Meier" in report
    assert "volcano" in report or "data:image/png" in report
    assert len(list((merge / "km" / "plots").glob("km.expression.*.png"))) == len(
        request
    )


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_killed_run_resumes_with_same_results(plain_workflow, tmp_path):
    """Kill the whole Snakemake process group while a site bundle is being
    written, as a node crash would; unlock, rerun, and compare with a clean run."""
    config = demo_config(tmp_path)
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(
        snakemake_command(tmp_path, "--configfile", str(config)),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    site_log = tmp_path / "out" / "logs" / "site" / "site1.log"
    try:
        wait_for(lambda: site_log.exists() and site_log.stat().st_size > 0,
                 600, "the site_bundle job of site1")  # fmt: skip
        time.sleep(1.0)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
        log.close()
    assert process.returncode == -signal.SIGKILL
    bundles = tmp_path / "out" / "bundles"
    for bundle in bundles.glob("*.naipo"):
        read_bundle(bundle)  # every bundle present is complete and verifies
    assert list((tmp_path / ".snakemake" / "locks").iterdir())  # left by the kill
    unlocked = snakemake(tmp_path, "--configfile", str(config), "--unlock")
    assert unlocked.returncode == 0, unlocked.stderr[-2000:]
    rerun = snakemake(tmp_path, "--configfile", str(config))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not list((tmp_path / "out").rglob(".*.tmp-*"))
    expected, _, plain_result = plain_workflow
    assert plain_result.returncode == 0
    assert_same_results(expected / "out", tmp_path / "out")
