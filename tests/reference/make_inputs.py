"""Write the synthetic data sets that make_reference.R computes reference values on.

Run from this folder: python make_inputs.py && Rscript make_reference.R
The data are fixed by the seed, so rerunning reproduces the files byte for byte.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def synthetic_sites(seed: int = 20261204) -> pd.DataFrame:
    """Three sites, 2 covariates, 3 biomarkers, times in whole months (many ties)."""
    rng = np.random.default_rng(seed)
    frames = []
    for site, n, base in (("A", 110, 0.020), ("B", 80, 0.035), ("C", 60, 0.015)):
        age = rng.normal(62, 9, n).round(1)
        sex = rng.integers(0, 2, n)
        g_bin = (rng.random(n) < 0.22).astype(int)
        g_dose = rng.binomial(2, 0.3, n)
        g_cont = rng.normal(8, 1.5, n).round(3)
        risk = 0.03 * (age - 62) + 0.4 * sex + 0.6 * g_bin + 0.25 * (g_cont - 8)
        latent = rng.exponential(1 / (base * np.exp(risk)))
        censor = rng.uniform(6, 60, n)
        time = np.ceil(np.minimum(latent, censor))
        event = (latent <= censor).astype(int)
        frames.append(
            pd.DataFrame(
                {
                    "site": site,
                    "time": time,
                    "event": event,
                    "age": age,
                    "sex": sex,
                    "g_bin": g_bin,
                    "g_dose": g_dose,
                    "g_cont": g_cont,
                }
            )  # fmt: skip
        )
    return pd.concat(frames, ignore_index=True)


def meta_inputs(seed: int = 7) -> pd.DataFrame:
    """Per-study estimates for meta-analysis checks: 40 sets of 2-8 studies."""
    rng = np.random.default_rng(seed)
    rows = []
    for group in range(40):
        k = int(rng.integers(2, 9))
        tau = [0.0, 0.2, 0.6][group % 3]
        truth = rng.normal(0.3, 0.4)
        se = rng.uniform(0.1, 0.8, k)
        estimate = truth + rng.normal(0, tau, k) + rng.normal(0, se)
        rows += [
            {"group": f"m{group:02d}", "yi": y, "sei": s}
            for y, s in zip(estimate, se, strict=True)
        ]
    return pd.DataFrame(rows)


if __name__ == "__main__":
    synthetic_sites().to_csv(HERE / "synthetic_sites.tsv", sep="\t", index=False)
    meta_inputs().to_csv(
        HERE / "meta_inputs.tsv", sep="\t", index=False, float_format="%.10g"
    )
