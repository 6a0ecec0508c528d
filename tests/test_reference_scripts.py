"""The stored R reference values are what the committed R script produces."""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pytest

from conftest import REFERENCE, needs


@needs("Rscript")
@pytest.mark.needs_r
def test_r_reference_values_reproduce(tmp_path):
    for name in ("make_reference.R", "synthetic_sites.tsv", "meta_inputs.tsv"):
        shutil.copy(REFERENCE / name, tmp_path / name)
    subprocess.run(
        ["Rscript", "make_reference.R"], cwd=tmp_path, check=True, capture_output=True,
        timeout=300,
    )  # fmt: skip
    for name in ("reference_score.tsv", "reference_fits.tsv", "reference_meta.tsv"):
        stored = pd.read_csv(REFERENCE / name, sep="\t")
        fresh = pd.read_csv(tmp_path / name, sep="\t")
        pd.testing.assert_frame_equal(stored, fresh, rtol=1e-9)


def test_synthetic_inputs_reproduce(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_inputs", REFERENCE / "make_inputs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.synthetic_sites()
    stored = pd.read_csv(REFERENCE / "synthetic_sites.tsv", sep="\t")
    pd.testing.assert_frame_equal(stored, fresh, check_dtype=False)
