"""Running the workflow as a user does, and comparing two runs' results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import DEMO_RESOURCES, REPO


def demo_config(tmp_path, name="config.yaml", resources=DEMO_RESOURCES, **changes):
    """Write config/<name> with outdir "out" and the demo data under resources."""
    config = yaml.safe_load((REPO / "config" / name).read_text())
    config["outdir"] = "out"
    config["demo"]["resources"] = str(resources)
    config.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake_command(tmp_path, *args) -> list[str]:
    """The command a user types in a clone; like a clone, the working folder
    contains the default demo configuration in config/config.yaml."""
    default = Path(tmp_path) / "config" / "config.yaml"
    if not default.exists():
        default.parent.mkdir(parents=True, exist_ok=True)
        default.write_text((REPO / "config" / "config.yaml").read_text())
    return [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
        "--cores", "2", "--directory", str(tmp_path), *args,
    ]  # fmt: skip


def snakemake(tmp_path, *args, timeout=900):
    return subprocess.run(
        snakemake_command(tmp_path, *args), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def assert_same_results(expected: Path, actual: Path) -> None:
    """Check that two demo runs produced the same tables and bundle contents.

    Creation times, keys and signatures differ between runs. Every pooled table
    must match byte for byte, and every bundle table must have the same
    SHA-256.
    """
    tables = sorted(
        p.relative_to(expected) for p in (expected / "merge").rglob("*.tsv")
    )
    assert tables
    for table in tables:
        assert (actual / table).read_bytes() == (expected / table).read_bytes(), table
    bundles = sorted(p.name for p in (expected / "bundles").glob("*.naipo"))
    assert bundles == sorted(p.name for p in (actual / "bundles").glob("*.naipo"))
    for name in bundles:
        want = json.loads((expected / "bundles" / name / "manifest.json").read_text())
        got = json.loads((actual / "bundles" / name / "manifest.json").read_text())
        for table, entry in want["tables"].items():
            assert got["tables"][table]["sha256"] == entry["sha256"], (name, table)
