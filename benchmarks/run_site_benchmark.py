"""Site-stage speed and memory, side by side with bcftools, plink2, lifelines and R.

Needs the data of make_data.py, bcftools, plink2 and Rscript (with survival).
Each command runs --repeats times under /usr/bin/time -v after one warm-up
run; the median wall time and peak resident memory are reported, and every
ratio compares medians measured in this same run.

    python benchmarks/make_data.py --out benchmarks/data
    python benchmarks/run_site_benchmark.py --data benchmarks/data \
        --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def timed(command: list[str], repeats: int, cwd: Path) -> dict:
    """Median wall seconds and peak RSS (MB) of ``command`` under /usr/bin/time -v."""
    walls, peaks = [], []
    for attempt in range(repeats + 1):
        result = subprocess.run(
            ["/usr/bin/time", "-v", *command], cwd=cwd, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
        if attempt == 0:
            continue  # warm-up: page cache, numba cache
        wall = re.search(
            r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr
        )
        hours, minutes, seconds = wall.groups()
        walls.append(int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds))
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
        peaks.append(int(rss.group(1)) / 1024)
    return {
        "command": " ".join(command),
        "wall_s": statistics.median(walls),
        "wall_min_s": min(walls),
        "wall_max_s": max(walls),
        "peak_mb": statistics.median(peaks),
    }


def lifelines_per_variant(data: Path, n_variants: int) -> float:
    """Seconds per variant of a loop of lifelines CoxPHFitter (g + age + sex)."""
    from lifelines import CoxPHFitter

    clinical = pd.read_csv(data / "clinical.tsv", sep="\t")
    dosages = query_dosages(data / "g25000.vcf.gz", n_variants)
    frame = clinical[["time", "event", "age"]].copy()
    frame["male"] = (clinical.sex == "male").astype(float)
    start = time.perf_counter()
    for column in dosages.columns:
        frame["g"] = dosages[column].fillna(dosages[column].mean()).to_numpy()
        CoxPHFitter().fit(frame, "time", "event")
    return (time.perf_counter() - start) / dosages.shape[1]


def r_per_variant(data: Path, n_variants: int, workdir: Path) -> float:
    """Seconds per variant of a loop of R survival::coxph (Breslow, Wald test)."""
    dosages = query_dosages(data / "g25000.vcf.gz", n_variants)
    dosages.to_csv(workdir / "dosages.tsv", sep="\t", index=False)
    script = f"""
suppressPackageStartupMessages(library(survival))
clinical <- read.delim("{(data / "clinical.tsv").resolve()}")
dosages <- read.delim("{(workdir / "dosages.tsv").resolve()}")
clinical$male <- as.numeric(clinical$sex == "male")
start <- proc.time()[["elapsed"]]
for (v in names(dosages)) {{
  g <- dosages[[v]]
  g[is.na(g)] <- mean(g, na.rm = TRUE)
  fit <- coxph(Surv(time, event) ~ g + age + male, data = clinical, ties = "breslow")
}}
cat((proc.time()[["elapsed"]] - start) / ncol(dosages), "\\n")
"""
    result = subprocess.run(
        ["Rscript", "-e", script], capture_output=True, text=True, check=True
    )
    return float(result.stdout.split()[-1])


def query_dosages(vcf: Path, n_variants: int) -> pd.DataFrame:
    """ALT dosages of the first ``n_variants`` records, decoded by bcftools."""
    text = subprocess.run(
        ["bcftools", "query", "-f", "%POS[\\t%GT]\\n", str(vcf)],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()[:n_variants]  # fmt: skip
    columns = {}
    for line in text:
        pos, *calls = line.split("\t")
        values = np.array(
            [np.nan if "." in c else int(c[0]) + int(c[2]) for c in calls], dtype=float
        )
        columns[f"v{pos}"] = values
    return pd.DataFrame(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="benchmarks/data")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[25000, 50000, 100000])
    args = parser.parse_args()
    data = Path(args.data).resolve()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    naipo = [sys.executable, "-m", "naipo_bio.cli"]
    results: dict = {"machine": platform.platform(), "rows": []}
    largest = max(args.sizes)
    for n in args.sizes:
        formats = ("vcf", "bcf") if n == largest else ("vcf",)
        for fmt in formats:
            file = data / (f"g{n}.vcf.gz" if fmt == "vcf" else f"g{n}.bcf")
            command = [
                *naipo, "site", "--config", str(data / f"g{n}.{fmt}.yaml"),
                "--site", "bench", "--out", str(out / f"bench_{n}_{fmt}.naipo"),
                "--threads", "2",
            ]  # fmt: skip
            site = timed(command, args.repeats, data)
            floor = timed(
                ["bcftools", "view", "-Ou", "-o", "/dev/null", str(file)],
                args.repeats,
                data,
            )
            row = {
                "variants": n,
                "format": fmt,
                "site": site,
                "bcftools_view_Ou": floor,
            }
            if n == largest:
                row["bcftools_view_Ov"] = timed(
                    ["bcftools", "view", "-Ov", "-o", "/dev/null", str(file)],
                    args.repeats,
                    data,
                )
                if fmt == "vcf":
                    row["plink2_make_pgen"] = timed(
                        ["plink2", "--vcf", str(file), "--make-pgen", "--out",
                         str(out / "plink2_out"), "--threads", "2"],
                        args.repeats, data,
                    )  # fmt: skip
            results["rows"].append(row)
            print(json.dumps(row, indent=1), flush=True)
    site_per_variant = next(
        r["site"]["wall_s"] / r["variants"]
        for r in results["rows"] if r["variants"] == largest and r["format"] == "vcf"
    )  # fmt: skip
    results["lifelines_s_per_variant"] = lifelines_per_variant(data, 20)
    results["r_coxph_s_per_variant"] = r_per_variant(data, 200, out)
    results["site_s_per_variant"] = site_per_variant
    (out / "site_benchmark.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
