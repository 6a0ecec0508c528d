"""The workflow on a real SLURM cluster through Snakemake's executor plugin.

Runs only with NAIPO_TEST_SLURM=1 and SLURM's commands on the PATH: `.ci/run`
starts a one-node cluster on 127.0.0.1 (`.ci/slurm start`) and sets both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from conftest import REPO
from naipo_bio.bundle.read import read_bundle
from snakemake_runs import (
    assert_same_results,
    demo_config,
    snakemake,
    snakemake_command,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("NAIPO_TEST_SLURM") != "1" or shutil.which("sbatch") is None,
        reason="needs a running SLURM (NAIPO_TEST_SLURM=1, see .ci/slurm)",
    ),
]

#: The repository's SLURM profile. The test cluster has no accounting database,
#: so the plugin polls squeue, starting 5 s after each submission.
SLURM = (
    "--workflow-profile", str(REPO / "workflow" / "profiles" / "slurm"),
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "5",
)  # fmt: skip


def submitted_rules(output: str) -> set[str]:
    rules = set()
    for line in output.splitlines():
        if "submitted with SLURM jobid" in line and "rule_" in line:
            rules.add(line.split("rule_", 1)[1].split("/", 1)[0])
    return rules


def test_slurm_demo_equals_local_run(plain_workflow, tmp_path):
    config = demo_config(tmp_path)
    result = snakemake(tmp_path, "--configfile", str(config), *SLURM, timeout=1200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    rules = submitted_rules(output)
    assert {"demo_inputs", "site_prepare", "site_bundle", "merge", "site_km",
            "merge_km"} <= rules  # fmt: skip
    assert not rules & {"demo_keys", "demo_registry", "site_release"}  # local rules
    expected, _, plain_result = plain_workflow
    assert plain_result.returncode == 0
    assert_same_results(expected / "out", tmp_path / "out")


def running_job(rule: str) -> str | None:
    """SLURM id of a running job of ``rule``, from the comment the plugin sets."""
    listing = subprocess.run(
        ["squeue", "-h", "-o", "%i|%k|%T"], capture_output=True, text=True, check=True
    ).stdout
    for line in listing.splitlines():
        job, comment, state = line.split("|")
        if comment.startswith(f"rule_{rule}_") and state == "RUNNING":
            return job
    return None


def test_slurm_job_killed_then_rerun(plain_workflow, tmp_path):
    config = demo_config(tmp_path)
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(
        snakemake_command(tmp_path, "--configfile", str(config), *SLURM,
                          "--retries", "0"),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 900
        job = None
        while job is None and process.poll() is None and time.monotonic() < deadline:
            job = running_job("site_bundle")
            time.sleep(0.3)
        assert job is not None, "no site_bundle job was seen running"
        time.sleep(1.0)
        subprocess.run(["scancel", "--signal=KILL", "--full", job], check=True)
        process.wait(timeout=900)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    first = (tmp_path / "first.log").read_text()
    assert process.returncode != 0, first[-3000:]
    for bundle in (tmp_path / "out" / "bundles").glob("*.naipo"):
        read_bundle(bundle)  # every bundle present is complete and verifies
    rerun = snakemake(tmp_path, "--configfile", str(config), *SLURM, timeout=1200)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
    expected, _, plain_result = plain_workflow
    assert plain_result.returncode == 0
    assert_same_results(expected / "out", tmp_path / "out")
