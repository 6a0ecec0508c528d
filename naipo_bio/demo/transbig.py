"""TRANSBIG demo inputs: breast-cancer expression and distant-metastasis-free
survival (GEO GSE7390) in three pseudo-hospitals.

The file has no patient ids and no centre column. Patients get ids P001-P198
in row order and are split by ``default_rng(20240601).permutation(198) % 3 + 1``
(66 patients per site). Expression values are the 76 probe sets of the 76-gene
signature, already log2; the probe ids (``X202240_at``) are used as given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from naipo_bio.io.atomic import atomic_file

DATA = "breast_cancer_GSE7390-metastasis.csv.gz"
SEED = 20240601


def load(resources: Path) -> pd.DataFrame:
    frame = pd.read_csv(Path(resources) / DATA)
    frame.insert(0, "patient_id", [f"P{i + 1:03d}" for i in range(len(frame))])
    site = np.random.default_rng(SEED).permutation(len(frame)) % 3 + 1
    frame.insert(1, "site", site)
    return frame


def demo_sites(outdir: str, n_sites: int = 3) -> dict[str, dict]:
    sites = {}
    for number in range(1, n_sites + 1):
        folder = f"{outdir}/demo/inputs/site{number}"
        sites[f"site{number}"] = {
            "clinical": {
                "path": f"{folder}/clinical.tsv",
                "columns": {"time": "t.tdm", "event": "e.tdm"},
                "time_unit": "days",
            },
            "expression": {
                "path": f"{folder}/expression.tsv",
                "scale": "log2",
                "gene_id_type": "probe",
            },
        }
    return sites


def prepare_site(
    resources: Path, site: int, n_sites: int, out_dir: Path
) -> dict[str, Path]:
    """Write the clinical table and the probes x patients table of one site."""
    if n_sites != 3:
        raise ValueError("The TRANSBIG split defines exactly three sites.")
    frame = load(resources)
    frame = frame.loc[frame.site == site]
    out_dir = Path(out_dir)
    paths = {
        "clinical": out_dir / "clinical.tsv",
        "expression": out_dir / "expression.tsv",
    }
    clinical = frame[["patient_id", "age", "size", "grade", "er", "t.tdm", "e.tdm"]]
    with atomic_file(paths["clinical"]) as tmp:
        clinical.to_csv(tmp, sep="\t", index=False)
    probes = [c for c in frame.columns if c.startswith("X")]
    expression = frame.set_index("patient_id")[probes].T.rename_axis("probe")
    with atomic_file(paths["expression"]) as tmp:
        expression.to_csv(tmp, sep="\t")
    return paths


def universe(resources: Path) -> pd.DataFrame:
    """Secure-aggregation universe: the 76 probe sets of the expression table."""
    probes = [c for c in pd.read_csv(Path(resources) / DATA, nrows=0).columns
              if c.startswith("X")]  # fmt: skip
    return pd.DataFrame({"kind": "expression", "biomarker_id": probes})
