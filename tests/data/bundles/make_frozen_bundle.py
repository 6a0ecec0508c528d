"""Write the frozen example bundle of the current schema version.

Run once per new schema version, from the repository root:
    python tests/data/bundles/make_frozen_bundle.py
Never rewrite an existing version's folder: tests read those folders back to
prove that old bundles stay readable.
"""

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1]))

from conftest import simulate_sites  # noqa: E402
from naipo_bio.bundle.write import association_arrow, write_bundle  # noqa: E402
from naipo_bio.config import analysis_hash, validate_config  # noqa: E402
from naipo_bio.contract import SCHEMA_VERSION  # noqa: E402
from naipo_bio.site.disclosure import apply_policy  # noqa: E402
from naipo_bio.site.statistics import BiomarkerData, biomarker_table  # noqa: E402
from naipo_bio.stats import cox  # noqa: E402


def main() -> None:
    folder = HERE / f"v{SCHEMA_VERSION}"
    if folder.exists():
        raise SystemExit(f"{folder} exists; frozen bundles are never rewritten.")
    data = simulate_sites(99, sizes=(150,))
    analysis = validate_config({"analysis": {"id": "frozen-example"}})["analysis"]
    design = cox.SurvivalDesign.from_arrays(data["time"], data["event"], data["X"])
    null = cox.fit_null(design)
    genes = ["GENE_A", "GENE_B", "GENE_C"]
    values = np.vstack([data["g_bin"], data["g_dose"] > 1, data["g_bin"] * 0])
    table = biomarker_table(
        design, null, BiomarkerData("mutation", genes, genes, values), True
    )
    table, summary = apply_policy(table, "mutation", analysis["disclosure"])
    manifest = {
        "site_id": "example",
        "analysis_id": analysis["id"],
        "config_hash": analysis_hash(analysis),
        "analysis": analysis,
        "ties": analysis["ties"],
        "time_unit": "days",
        "genome_build": None,
        "counts": {"patients": design.n, "events": design.n_events},
        "covariates": list(design.covariate_names),
        "disclosure": {
            "policy": analysis["disclosure"],
            "summary": {"mutation": summary},
        },
    }
    write_bundle(
        folder / "example.naipo", manifest, {"mutation": association_arrow(table)}
    )
    expected = {
        row.biomarker_id: {"status": row.status, "u": row.u, "v": row.v}
        for row in table.itertuples()
    }
    (folder / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    main()
