"""Germline demo inputs: real 1000 Genomes genotypes with simulated survival.

The 100 samples of the chr22 slice are healthy reference individuals, so each
gets a simulated age, sex and survival (fixed seed). Survival depends on age,
sex and the dosage of the slice's most frequent polymorphic variant, so that the
demo has one true association. Each pseudo-site receives the VCF columns of its
own samples.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pysam

from naipo_bio.io.atomic import atomic_file

VCF = "chr22.vcf.gz"
SEED = 20261204
#: Variant whose dosage raises the simulated hazard (log HR 0.7 per allele).
CAUSAL = ("chr22", 10511391)
CAUSAL_LOG_HR = 0.7


def site_of(sample: str, n_sites: int = 3) -> int:
    return int(hashlib.sha256(sample.encode()).hexdigest(), 16) % n_sites + 1


def _read_vcf(resources: Path) -> tuple[list[str], list[str], list[list[str]]]:
    header, rows = [], []
    with gzip.open(resources / VCF, "rt") as handle:
        for line in handle:
            if line.startswith("#"):
                header.append(line.rstrip("\n"))
            else:
                rows.append(line.rstrip("\n").split("\t"))
    samples = header[-1].split("\t")[9:]
    return header, samples, rows


def simulated_clinical(resources: Path) -> pd.DataFrame:
    """Age, sex, follow-up (days) and event for every sample of the slice."""
    _, samples, rows = _read_vcf(resources)
    rng = np.random.default_rng(SEED)
    n = len(samples)
    age = rng.normal(60, 10, n).round(1)
    sex = np.where(rng.random(n) < 0.5, "female", "male")
    causal = next(r for r in rows if (r[0], int(r[1])) == CAUSAL)
    dosage = np.array(
        [sum(a == "1" for a in call.split(":")[0].replace("|", "/").split("/"))
         for call in causal[9:]],
        dtype=float,
    )  # fmt: skip
    risk = 0.04 * (age - 60) + 0.3 * (sex == "male") + CAUSAL_LOG_HR * dosage
    latent = rng.exponential(1500 * np.exp(-risk))
    censor = rng.uniform(300, 3000, n)
    return pd.DataFrame(
        {
            "sample": samples,
            "age_years": age,
            "sex": sex,
            "followup_days": np.round(np.minimum(latent, censor)).astype(int),
            "event": (latent <= censor).astype(int),
        }
    )


def demo_sites(outdir: str, n_sites: int = 3) -> dict[str, dict]:
    sites = {}
    for number in range(1, n_sites + 1):
        folder = f"{outdir}/demo/inputs/site{number}"
        sites[f"site{number}"] = {
            "clinical": {
                "path": f"{folder}/clinical.tsv",
                "columns": {
                    "patient_id": "sample",
                    "time": "followup_days",
                    "age": "age_years",
                },
                "time_unit": "days",
            },
            "germline": {"vcf": f"{folder}/germline.vcf.gz"},
        }
    return sites


def prepare_site(
    resources: Path, site: int, n_sites: int, out_dir: Path
) -> dict[str, Path]:
    """Write the clinical table and the bgzipped, indexed VCF of one site."""
    resources = Path(resources)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    header, samples, rows = _read_vcf(resources)
    keep = [i for i, s in enumerate(samples) if site_of(s, n_sites) == site]
    clinical = simulated_clinical(resources).iloc[keep]
    paths = {
        "clinical": out_dir / "clinical.tsv",
        "germline": out_dir / "germline.vcf.gz",
    }
    with atomic_file(paths["clinical"]) as tmp:
        clinical.to_csv(tmp, sep="\t", index=False)
    columns = header[-1].split("\t")
    lines = header[:-1] + ["\t".join(columns[:9] + [samples[i] for i in keep])]
    lines += ["\t".join(r[:9] + [r[9 + i] for i in keep]) for r in rows]
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        plain = Path(tmp) / "germline.vcf"
        plain.write_text("\n".join(lines) + "\n")
        pysam.tabix_index(str(plain), preset="vcf", force=True)
        os.replace(Path(tmp) / "germline.vcf.gz", paths["germline"])
        os.replace(
            Path(tmp) / "germline.vcf.gz.tbi", Path(str(paths["germline"]) + ".tbi")
        )
    return paths
