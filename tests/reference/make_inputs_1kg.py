"""Write dosages and clinical data of the 1000 Genomes chr22 slice for R.

Genotypes come from `bcftools query` (not from naipo-bio's decoder), survival
from the germline demo's simulation. Missing dosages are mean-imputed twice:
over all 100 samples (one site) and within each of the demo's three sites.
Run from this folder (needs bcftools):
    python make_inputs_1kg.py && Rscript make_reference_1kg.R
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from naipo_bio.demo.germline_1kg import simulated_clinical, site_of  # noqa: E402

VCF = REPO / "resources" / "1kg-vcf-slices" / "chr22.vcf.gz"


def dosages() -> tuple[list[str], pd.DataFrame]:
    samples = subprocess.run(
        ["bcftools", "query", "-l", str(VCF)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    query = subprocess.run(
        ["bcftools", "query", "-f", "%POS\\t%REF\\t%ALT[\\t%GT]\\n", str(VCF)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    columns = {}
    for line in query.splitlines():
        pos, ref, alts, *calls = line.split("\t")
        for k, alt in enumerate(alts.split(","), start=1):
            if alt == "*" or alt.startswith("<"):
                continue
            values = []
            for call in calls:
                alleles = call.replace("|", "/").split("/")
                if "." in alleles:
                    values.append(np.nan)
                else:
                    values.append(sum(int(a) == k for a in alleles))
            columns[f"22:{pos}:{ref}:{alt}"] = values
    return samples, pd.DataFrame(columns, index=samples)


def main() -> None:
    samples, G = dosages()
    clinical = simulated_clinical(REPO / "resources" / "1kg-vcf-slices").set_index(
        "sample"
    )
    clinical = clinical.loc[samples]
    clinical["site"] = [site_of(s) for s in samples]
    clinical["male"] = (clinical.sex == "male").astype(int)
    base = clinical[["site", "followup_days", "event", "age_years", "male"]]
    pooled = G.fillna(G.mean())
    per_site = G.groupby(clinical.site).transform(lambda col: col.fillna(col.mean()))
    for name, data in (("one_site", pooled), ("three_sites", per_site)):
        out = pd.concat([base, data], axis=1).reset_index(names="sample")
        out.to_csv(
            HERE / f"1kg_{name}.tsv", sep="\t", index=False, float_format="%.12g"
        )


if __name__ == "__main__":
    main()
