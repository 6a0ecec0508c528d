"""Synthetic genotype data for the site-stage benchmark.

Writes, under the output folder, a bgzipped VCF (tabix index) and a BCF (CSI
index) of N_SAMPLES samples for each variant count, a clinical table, and a
naipo-bio configuration per file. Allele frequencies follow a Beta(0.5, 2)
distribution capped at 0.5; 2% of the calls are missing.

    python benchmarks/make_data.py --out benchmarks/data --variants 25000 50000 100000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import yaml

N_SAMPLES = 5000
CONTIG_LENGTH = 51_304_566  # GRCh37 chr22
CODES = np.array(["0|0", "0|1", "1|0", "1|1", "./."])


def write_vcf(path: Path, n_variants: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples = [f"S{i:05d}" for i in range(N_SAMPLES)]
    step = (CONTIG_LENGTH - 20_000_000) // n_variants
    with open(path, "w") as handle:
        handle.write("##fileformat=VCFv4.2\n##reference=GRCh37\n")
        handle.write(f"##contig=<ID=22,length={CONTIG_LENGTH}>\n")
        handle.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        handle.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t")
        handle.write("\t".join(samples) + "\n")
        for start in range(0, n_variants, 1000):
            count = min(1000, n_variants - start)
            af = np.minimum(rng.beta(0.5, 2.0, count), 0.5)[:, None]
            a = rng.random((count, N_SAMPLES)) < af
            b = rng.random((count, N_SAMPLES)) < af
            code = a * 2 + b
            code[rng.random((count, N_SAMPLES)) < 0.02] = 4
            for row in range(count):
                pos = 16_000_000 + (start + row) * step
                handle.write(f"22\t{pos}\t.\tA\tG\t.\tPASS\t.\tGT\t")
                handle.write("\t".join(CODES[code[row]]))
                handle.write("\n")


def compress(vcf: Path) -> tuple[Path, Path]:
    """bgzip + tabix (bgzip from htslib when installed, else pysam), then BCF."""
    gz = Path(str(vcf) + ".gz")
    if shutil.which("bgzip"):
        subprocess.run(["bgzip", "-f", "-@", "2", str(vcf)], check=True)
        pysam.tabix_index(str(gz), preset="vcf", force=True)
    else:
        pysam.tabix_index(str(vcf), preset="vcf", force=True)
    bcf = vcf.with_suffix(".bcf")
    subprocess.run(["bcftools", "view", "-Ob", "-o", str(bcf), str(gz)], check=True)
    subprocess.run(["bcftools", "index", "-f", str(bcf)], check=True)
    return gz, bcf


def write_clinical(path: Path) -> None:
    rng = np.random.default_rng(1)
    pd.DataFrame(
        {
            "sample": [f"S{i:05d}" for i in range(N_SAMPLES)],
            "time": rng.integers(1, 3650, N_SAMPLES),
            "event": rng.integers(0, 2, N_SAMPLES),
            "age": rng.normal(60, 10, N_SAMPLES).round(1),
            "sex": rng.choice(["female", "male"], N_SAMPLES),
        }
    ).to_csv(path, sep="\t", index=False)


def write_config(path: Path, clinical: Path, genotypes: Path) -> None:
    config = {
        "outdir": str(path.parent / "results"),
        "threads": 2,
        "analysis": {
            "id": "benchmark",
            "genome_build": "GRCh37",
            "covariates": [
                {"name": "age", "type": "numeric"},
                {"name": "sex", "type": "categorical", "reference": "female"},
            ],
            "variants": {"chunk_size": 0, "gene_tests": {"enabled": False}},
        },
        "sites": {
            "bench": {
                "clinical": {
                    "path": str(clinical.resolve()),
                    "columns": {"patient_id": "sample"},
                    "time_unit": "days",
                },
                "germline": {"vcf": str(genotypes.resolve())},
            }
        },
    }
    path.write_text(yaml.safe_dump(config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/data")
    parser.add_argument(
        "--variants", type=int, nargs="+", default=[25000, 50000, 100000]
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clinical = out / "clinical.tsv"
    write_clinical(clinical)
    for n in args.variants:
        vcf = out / f"g{n}.vcf"
        if not Path(str(vcf) + ".gz").exists():
            write_vcf(vcf, n, seed=n)
            compress(vcf)
        for suffix, file in (
            ("vcf", Path(str(vcf) + ".gz")),
            ("bcf", vcf.with_suffix(".bcf")),
        ):
            write_config(out / f"g{n}.{suffix}.yaml", clinical, file)
        print(f"{n} variants written")


if __name__ == "__main__":
    main()
