"""Shared fixtures: paths, synthetic survival data, and one full demo run."""

from __future__ import annotations

import copy
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
CASES = DATA / "cases"
REFERENCE = REPO / "tests" / "reference"
DEMO_RESOURCES = REPO / "resources" / "tcga-acc"


def needs(program: str):
    """Skip a test when an external program is not installed."""
    return pytest.mark.skipif(
        shutil.which(program) is None, reason=f"{program} is not installed"
    )


def simulate_sites(
    seed: int,
    sizes=(120, 90, 70),
    n_covariates: int = 2,
    tie_grid: float | None = 30.0,
):
    """Synthetic multi-site survival data with ties and site-specific effects.

    Returns a dict of arrays: site, time, event, X (n, p), g_bin, g_dose, g_cont.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for index, n in enumerate(sizes):
        X = rng.normal(size=(n, n_covariates))
        g_bin = (rng.random(n) < 0.25).astype(float)
        g_dose = rng.binomial(2, 0.3, n).astype(float)
        g_cont = rng.normal(5, 2, n)
        effects = rng.normal(0, 0.4, n_covariates)
        risk = X @ effects + 0.5 * g_bin + 0.2 * (g_cont - 5)
        latent = rng.exponential(500 * np.exp(-risk) * (1 + index))
        censor = rng.uniform(100, 1500, n)
        time = np.minimum(latent, censor)
        if tie_grid:
            time = np.ceil(time / tie_grid) * tie_grid
        event = (latent <= censor).astype(np.int8)
        parts.append((np.full(n, index), time, event, X, g_bin, g_dose, g_cont))
    names = ("site", "time", "event", "X", "g_bin", "g_dose", "g_cont")
    return {name: np.concatenate([p[i] for p in parts]) for i, name in enumerate(names)}


@dataclass
class DemoRun:
    config: dict
    outdir: Path
    bundles: list[Path]
    merge_dir: Path
    summary: dict


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> DemoRun:
    """The TCGA ACC demo run once per test session: 3 sites (signed bundles)
    and the merge, which verifies the signatures."""
    from naipo_bio.config import load_config, validate_config
    from naipo_bio.demo.tcga_acc import prepare_site
    from naipo_bio.merge.run import run_merge
    from naipo_bio.security.keys import generate_keys, merge_registries
    from naipo_bio.site.run import run_site

    outdir = tmp_path_factory.mktemp("demo")
    config = load_config(REPO / "config" / "config.yaml")
    config = copy.deepcopy(config)
    config["outdir"] = str(outdir)
    config["sites"] = {}
    validate_config(config)
    keys = outdir / "demo" / "keys"
    for site in config["sites"]:
        generate_keys(site, keys / site)
    merge_registries([keys / s / "public.yaml" for s in config["sites"]],
                     config["merge"]["registry"])  # fmt: skip
    bundles = []
    for number, site in enumerate(config["sites"], start=1):
        prepare_site(DEMO_RESOURCES, number, 3, outdir / "demo" / "inputs" / site)
        bundle = outdir / "bundles" / f"{site}.naipo"
        # A patient with follow-up time 0 makes one site warn; record, not fail.
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            run_site(site, config, bundle, outdir / "sites" / site, threads=2)
        bundles.append(bundle)
    summary = run_merge(
        bundles, outdir / "merge", top_hits=3, registry=config["merge"]["registry"],
        require_signatures=True, expected_analysis=config["analysis"],
    )  # fmt: skip
    return DemoRun(config, outdir, bundles, outdir / "merge", summary)


@pytest.fixture(scope="session")
def plain_workflow(tmp_path_factory):
    """The README's demo run through Snakemake once: (folder, config, result)."""
    from snakemake_runs import demo_config, snakemake

    tmp_path = tmp_path_factory.mktemp("workflow")
    config = demo_config(tmp_path)
    return tmp_path, config, snakemake(tmp_path, "--configfile", str(config))
