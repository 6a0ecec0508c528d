"""Memory and time of merging many large variant bundles.

Writes SITES synthetic site bundles of N variant rows each, at positions spread
over the GRCh37 autosomes (80% shared by all sites, 5% of rows with REF and
ALT swapped), then times
`naipo-bio merge` on them under /usr/bin/time -v. Peak memory should not grow
with N, because the merge reads the genome window by window.

    python benchmarks/run_merge_benchmark.py --out benchmarks/results \
        --rows 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from naipo_bio.bundle.write import write_bundle
from naipo_bio.config import analysis_hash, validate_config
from naipo_bio.io.genome import contig_lengths
from naipo_bio.site.variants import variant_arrow

SITES = 10
CONTIGS = [str(c) for c in range(1, 23)]


def genome_positions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sorted random positions spread over the GRCh37 autosomes."""
    lengths = np.array([contig_lengths()["GRCh37"][c] for c in CONTIGS], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.sort(rng.choice(offsets[-1], size=n, replace=False))
    index = np.searchsorted(offsets, flat, side="right") - 1
    return np.array(CONTIGS)[index], flat - offsets[index] + 1


def site_table(shared: tuple, rng: np.random.Generator, n: int) -> pd.DataFrame:
    """One site's rows: the shared positions plus its own, each position once
    (a site stage rejects a VCF that has a variant twice)."""
    shared_positions = set(zip(*shared, strict=True))
    extra = [
        site
        for site in zip(*genome_positions(rng, 2 * (n - len(shared[0]))), strict=True)
        if site not in shared_positions
    ][: n - len(shared[0])]
    contig = np.concatenate([shared[0], [c for c, _ in extra]])
    pos = np.concatenate([shared[1], [p for _, p in extra]])
    order = np.lexsort((pos, np.array([CONTIGS.index(c) for c in contig])))
    contig, pos = contig[order], pos[order]
    swapped = rng.random(n) < 0.05
    an = np.full(n, 4000.0)
    ac = np.round(rng.beta(0.5, 3, n) * 2000)
    return pd.DataFrame(
        {
            "contig": contig,
            "pos": pos,
            "ref": np.where(swapped, "G", "A"),
            "alt": np.where(swapped, "A", "G"),
            "status": "ok",
            "reason": None,
            "n": 2000,
            "call_rate": 1.0,
            "ac": np.where(swapped, an - ac, ac),
            "an": an,
            "n_carriers": (ac / 1.5).astype(np.int64) + 3,
            "hwe_p": rng.random(n),
            "u": rng.normal(0, 3, n) * np.where(swapped, -1, 1),
            "v": rng.uniform(5, 20, n),
            "genes": None,
        }
    )


def write_sites(folder: Path, n: int) -> list[Path]:
    analysis = validate_config({"analysis": {"id": "merge-benchmark"}})["analysis"]
    rng = np.random.default_rng(n)
    shared = genome_positions(rng, int(n * 0.8))
    paths = []
    for site in range(SITES):
        path = folder / f"site{site}.naipo"
        if (path / "manifest.json").exists():  # written by an earlier run
            paths.append(path)
            continue
        manifest = {
            "site_id": f"site{site}", "analysis_id": analysis["id"],
            "config_hash": analysis_hash(analysis), "analysis": analysis,
            "ties": "breslow", "time_unit": "days", "genome_build": None,
            "counts": {"patients": 2000, "events": 700}, "covariates": [],
            "disclosure": {"policy": analysis["disclosure"], "summary": {}},
        }  # fmt: skip
        table = site_table(shared, rng, n)
        write_bundle(path, manifest, {"variant": variant_arrow(table)})
        paths.append(path)
    return paths


def timed_merge(bundles: list[Path], out: Path) -> dict:
    command = [
        sys.executable,
        "-m",
        "naipo_bio.cli",
        "merge",
        *map(str, bundles),
        "--out",
        str(out),
    ]
    result = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-2000:])
    wall = re.search(
        r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr
    )
    hours, minutes, seconds = wall.groups()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    return {
        "wall_s": int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds),
        "peak_mb": int(rss.group(1)) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    out = Path(args.out)
    results = []
    for n in args.rows:
        folder = out / f"merge_{n}"
        bundles = write_sites(folder / "bundles", n)
        measured = timed_merge(bundles, folder / "merged")
        pooled = (
            sum(
                1
                for _ in open(folder / "merged" / "tables" / "associations.variant.tsv")
            )
            - 1
        )
        results.append(
            {"sites": SITES, "rows_per_site": n, "pooled_variants": pooled, **measured}
        )
        print(json.dumps(results[-1]), flush=True)
    (out / "merge_benchmark.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
