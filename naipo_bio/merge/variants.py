"""Pooling per-variant statistics of many sites in bounded memory.

Each site's variant table is sorted by contig and position and stored in row
groups of at most 65,536 rows. The merge walks the genome in windows (one
contig, ``WINDOW_BP`` base pairs), reads only the row groups of every site that
overlap the window, pools them, and appends the result to a temporary Parquet
file. Memory therefore depends on the window, not on the number of variants,
except for the p-values themselves: Benjamini-Hochberg q-values and the
genomic-control lambda need every one (8 bytes per variant, 80 MB for 10
million). A second pass adds the q-values and writes the final table in genome
order. The Manhattan plot uses a bounded sample (:class:`PlotSketch`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from naipo_bio.bundle.read import Bundle
from naipo_bio.contract import STATUS_OK, STATUS_QC_FAILED, VARIANT_TABLE
from naipo_bio.errors import MergeError
from naipo_bio.io.atomic import atomic_file
from naipo_bio.merge.harmonize import harmonize
from naipo_bio.stats.meta import bh_qvalues, two_sided_p

log = logging.getLogger(__name__)

WINDOW_BP = 5_000_000
TOP_VARIANTS = 1000


@dataclass
class VariantSettings:
    min_pooled_mac: float = 10.0
    ambiguous_max_maf: float = 0.4
    reference: dict | None = None


#: Variants below this p-value are all kept for the Manhattan plot.
PLOT_HIT_P = 1e-3
#: Size of the uniform sample of the other tested variants for the plot.
PLOT_SAMPLE = 200_000


class PlotSketch:
    """A bounded sample of (contig, position, p) for the Manhattan plot.

    Every variant with p below ``PLOT_HIT_P`` is kept; of the others, a
    uniform sample of ``PLOT_SAMPLE`` (the smallest of a random key each), so
    memory does not grow with the number of variants beyond the hits.
    """

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.codes: dict[str, int] = {}
        self.hits: list[np.ndarray] = []
        self.sample = np.empty((0, 4))  # key, contig code, pos, p

    def add(self, contig: np.ndarray, pos: np.ndarray, p: np.ndarray) -> None:
        codes = np.array([self.codes.setdefault(c, len(self.codes)) for c in contig])
        rows = np.column_stack([codes, pos, p]).astype(np.float64)
        hit = p < PLOT_HIT_P
        if hit.any():
            self.hits.append(rows[hit])
        rest = rows[~hit]
        keys = self.rng.random(len(rest))
        self.sample = np.vstack([self.sample, np.column_stack([keys, rest])])
        if len(self.sample) > 2 * PLOT_SAMPLE:
            keep = np.argpartition(self.sample[:, 0], PLOT_SAMPLE)[:PLOT_SAMPLE]
            self.sample = self.sample[keep]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sample = self.sample
        if len(sample) > PLOT_SAMPLE:
            sample = sample[np.argpartition(sample[:, 0], PLOT_SAMPLE)[:PLOT_SAMPLE]]
        rows = np.vstack([*self.hits, sample[:, 1:]]) if self.hits else sample[:, 1:]
        names = np.array(sorted(self.codes, key=self.codes.get), dtype=object)
        contig = names[rows[:, 0].astype(int)] if len(rows) else names[:0]
        return contig, rows[:, 1].astype(np.int64), rows[:, 2]


@dataclass
class VariantMergeResult:
    """Counts, every tested p-value (for lambda and BH), and the plot sample."""

    n_variants: int = 0
    n_tested: int = 0
    n_low_mac: int = 0
    n_ambiguous_dropped: int = 0
    n_shared: int = 0
    p: list[np.ndarray] = field(default_factory=list)
    sketch: PlotSketch = field(default_factory=PlotSketch)


def contig_sort_key(contig: str) -> tuple[int, str]:
    """1..22, X, Y, MT, then other names alphabetically."""
    order = {str(i): i for i in range(1, 23)} | {"X": 23, "Y": 24, "MT": 25}
    return (order.get(contig, 100), contig)


def _site_files(bundles: list[Bundle]) -> list[tuple[str, Path]]:
    files = []
    for bundle in bundles:
        entry = bundle.manifest["tables"].get(VARIANT_TABLE)
        if entry is not None:
            files.append((bundle.site_id, bundle.path / entry["file"]))
    return files


def _contig_spans(files) -> dict[str, int]:
    """Largest position seen per contig, over all sites (row-group statistics)."""
    spans: dict[str, int] = {}
    for _, path in files:
        table = pq.read_table(path, columns=["contig", "pos"])
        if table.num_rows == 0:
            continue
        grouped = table.group_by("contig").aggregate([("pos", "max")])
        for contig, top in zip(
            grouped.column("contig").to_pylist(), grouped.column("pos_max").to_pylist(),
            strict=True,
        ):  # fmt: skip
            spans[contig] = max(spans.get(contig, 0), int(top))
    return spans


def check_variant_rows(rows: pd.DataFrame) -> None:
    """Reject variant rows that no site stage writes (an edited table)."""
    problems = []
    tested = rows.loc[rows.status == STATUS_OK]
    if not (np.isfinite(tested.u).all() and np.isfinite(tested.v).all()):
        problems.append("a tested variant without a finite U and V")
    elif (tested.v <= 0).any():
        problems.append("a tested variant with V <= 0")
    present = [c for c in ("n", "ac", "an", "n_carriers") if c in rows.columns]
    counts = rows[present].to_numpy(dtype=np.float64)
    if (counts < 0).any() or (rows.ac > rows.an).any():
        problems.append("negative allele or patient counts, or AC above AN")
    unknown = set(rows.status) - {STATUS_OK, STATUS_QC_FAILED}
    if unknown:
        problems.append(f"unknown status {sorted(unknown)[0]!r}")
    repeated = rows.duplicated(["site", "contig", "pos", "ref", "alt"])
    if repeated.any():
        row = rows.loc[repeated].iloc[0]
        problems.append(f"variant {row.contig}:{row.pos}:{row.ref}:{row.alt} twice")
    if problems:
        sites = sorted(set(rows.site))
        raise MergeError(
            f"The variant tables of site(s) {sites} contain {'; '.join(problems)}. No "
            "site stage writes such rows, so a table was changed after it was "
            "written; ask the site to send the bundle again."
        )


def pool_window(
    rows: pd.DataFrame, settings: VariantSettings, site_order
) -> pd.DataFrame:
    """Pool the site rows of one window into one row per variant."""
    check_variant_rows(rows)
    rows = harmonize(rows, settings.reference, site_order)
    ok = (rows.status == STATUS_OK) & (rows.sign != 0)
    rows["u_oriented"] = np.where(ok, rows.sign * rows.u, 0.0)
    rows["v_ok"] = np.where(ok, rows.v, 0.0)
    rows["ac_oriented"] = np.where(rows.sign >= 0, rows.ac, rows.an - rows.ac)
    rows["ac_ok"] = np.where(ok, rows.ac_oriented, 0.0)
    rows["an_ok"] = np.where(ok, rows.an, 0.0)
    rows["n_ok"] = np.where(ok, rows.n, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rows["u2_over_v"] = np.where(ok & (rows.v > 0), rows.u**2 / rows.v, 0.0)
    rows["tested"] = ok
    rows["swapped"] = ok & (rows.sign < 0)
    rows["flipped"] = ok & rows.strand_flipped
    keys = ["contig", "pos", "pair"]
    grouped = rows.groupby(keys, sort=False)
    pooled = grouped.agg(
        ref=("target_ref", "first"),
        alt=("target_alt", "first"),
        in_reference=("in_reference", "first"),
        palindromic=("palindromic", "first"),
        n_sites_present=("site", "size"),
        n_sites_tested=("tested", "sum"),
        n_sites_swapped=("swapped", "sum"),
        n_sites_strand_flipped=("flipped", "sum"),
        n=("n_ok", "sum"),
        ac=("ac_ok", "sum"),
        an=("an_ok", "sum"),
        u=("u_oriented", "sum"),
        v=("v_ok", "sum"),
        sum_u2_over_v=("u2_over_v", "sum"),
    ).reset_index()
    pooled["sites_tested"] = (
        rows.loc[ok]
        .groupby(keys, sort=False)
        .site.agg(",".join)
        .reindex(pd.MultiIndex.from_frame(pooled[keys]))
        .to_numpy()
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled["af"] = np.where(pooled.an > 0, pooled.ac / pooled.an, np.nan)
        pooled["mac"] = np.minimum(pooled.ac, pooled.an - pooled.ac)
        maf = np.minimum(pooled.af, 1 - pooled.af)
        tested = pooled.v > 0
        pooled["z"] = np.where(tested, pooled.u / np.sqrt(pooled.v), np.nan)
        pooled["log_hr_onestep"] = np.where(tested, pooled.u / pooled.v, np.nan)
        pooled["se_onestep"] = np.where(tested, 1 / np.sqrt(pooled.v), np.nan)
        het_q = pooled.sum_u2_over_v - np.where(tested, pooled.u**2 / pooled.v, 0.0)
        df = pooled.n_sites_tested - 1
        pooled["het_q"] = np.where(df > 0, np.maximum(het_q, 0.0), np.nan)
        pooled["i2"] = np.where(
            (df > 0) & (het_q > 0), np.maximum(0.0, (het_q - df) / het_q), np.nan
        )
    pooled["low_mac"] = pooled.mac < settings.min_pooled_mac
    pooled["ambiguous_dropped"] = pooled.palindromic & (
        maf > settings.ambiguous_max_maf
    )
    pooled.loc[pooled.ambiguous_dropped, "z"] = np.nan
    pooled["p"] = two_sided_p(pooled.z.to_numpy())
    pooled = pooled.drop(columns=["pair", "sum_u2_over_v"])
    return pooled


def pool_variants(
    bundles: list[Bundle], out_dir: Path, settings: VariantSettings
) -> VariantMergeResult | None:
    """Pool every site's variant table; write associations.variant.tsv (genome
    order) and top_variants.tsv (smallest p first). Returns None without
    variant tables."""
    files = _site_files(bundles)
    if not files:
        return None
    site_order = {site: i for i, (site, _) in enumerate(files)}
    spans = _contig_spans(files)
    result = VariantMergeResult()
    tmp_path = out_dir / ".variants.pooled.parquet"
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = None
    p_values = []
    try:
        for contig in sorted(spans, key=contig_sort_key):
            for start in range(0, spans[contig] + 1, WINDOW_BP):
                end = start + WINDOW_BP
                frames = []
                for site, path in files:
                    table = pq.read_table(
                        path,
                        filters=[
                            ("contig", "=", contig),
                            ("pos", ">=", start),
                            ("pos", "<", end),
                        ],
                    )
                    if table.num_rows:
                        frames.append(table.to_pandas().assign(site=site))
                if not frames:
                    continue
                pooled = pool_window(
                    pd.concat(frames, ignore_index=True), settings, site_order
                )
                result.n_variants += len(pooled)
                result.n_shared += int((pooled.n_sites_present >= 2).sum())
                arrow = pa.Table.from_pandas(pooled, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(
                        tmp_path, arrow.schema, compression="zstd"
                    )
                writer.write_table(arrow.cast(writer.schema))
                p_values.append(pooled.p.to_numpy())
                tested = pooled.p.notna().to_numpy()
                result.p.append(pooled.p.to_numpy()[tested])
                result.sketch.add(
                    pooled.contig.to_numpy()[tested],
                    pooled.pos.to_numpy()[tested],
                    pooled.p.to_numpy()[tested],
                )
                result.n_tested += int(tested.sum())
                result.n_low_mac += int((pooled.low_mac & tested).sum())
                result.n_ambiguous_dropped += int(pooled.ambiguous_dropped.sum())
        if writer is not None:
            writer.close()
            writer = None
        if len(files) >= 2 and result.n_variants and result.n_shared == 0:
            raise MergeError(
                "No variant is present at two sites or more. The sites most likely "
                "use different genome builds, contig naming that the alias table "
                "does not cover, or disjoint regions; check each bundle's genome_build "
                "and the VCFs' contig names."
            )
        if result.n_variants:
            _write_final(tmp_path, np.concatenate(p_values), out_dir)
    finally:
        if writer is not None:
            writer.close()
        if tmp_path.exists():
            tmp_path.unlink()
    return result


def _write_final(tmp_path: Path, p_values: np.ndarray, out_dir: Path) -> None:
    q_values = bh_qvalues(p_values)
    tables = out_dir / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    source = pq.ParquetFile(tmp_path)
    offset = 0
    top = None
    with atomic_file(tables / "associations.variant.tsv") as tmp:
        with open(tmp, "w") as handle:
            for i, batch in enumerate(source.iter_batches(batch_size=65536)):
                frame = batch.to_pandas()
                frame.insert(
                    frame.columns.get_loc("p") + 1,
                    "q",
                    q_values[offset : offset + len(frame)],
                )
                offset += len(frame)
                frame.to_csv(
                    handle,
                    sep="\t",
                    index=False,
                    header=i == 0,
                    float_format="%.10g",
                    na_rep="NA",
                )
                candidates = frame.loc[frame.p.notna()].nsmallest(TOP_VARIANTS, "p")
                top = (
                    candidates
                    if top is None
                    else pd.concat([top, candidates]).nsmallest(TOP_VARIANTS, "p")
                )
    with atomic_file(tables / "top_variants.tsv") as tmp:
        (top if top is not None else pd.DataFrame()).to_csv(
            tmp, sep="\t", index=False, float_format="%.10g", na_rep="NA"
        )
