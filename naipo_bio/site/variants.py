"""Per-variant statistics of one site, chunk by chunk, and the gene blocks.

A chunk job decodes the genotypes of one region, applies QC, mean-imputes
missing dosages within the site, and computes U and V per variant. Rare
variants that belong to a gene are also kept as sparse dosages in a site-local
side file, so that gene covariance blocks can be built across chunk borders
once all chunks are done. The side file holds genotypes: it stays at the site
like the VCF itself and never enters a bundle.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from naipo_bio.contract import (
    GENE_BLOCK_SCHEMA,
    STATUS_OK,
    STATUS_QC_FAILED,
    VARIANT_SCHEMA,
)
from naipo_bio.errors import InputError
from naipo_bio.genotypes import _dosage
from naipo_bio.genotypes.genes import AnnotationGenes, BedGenes
from naipo_bio.genotypes.qc import QC_REASONS, QCSettings, variant_qc
from naipo_bio.genotypes.reader import GenotypeFile, ReadStats, Region
from naipo_bio.io.atomic import atomic_file
from naipo_bio.stats import cox

log = logging.getLogger(__name__)

RARE_VARIANT_COLUMNS = ("idx", "key", "gene", "consequence", "ac", "an", "n_carriers")

#: QC rules about rarity, which do not keep a variant out of gene blocks.
RARE_RULES = (QC_REASONS[1], QC_REASONS[2])


@dataclass
class ChunkResult:
    """Releasable per-variant rows and the site-local sparse rare dosages."""

    table: pd.DataFrame
    rare_variants: pd.DataFrame
    rare_dosage: pd.DataFrame  # idx, col (patient position), value
    stats: ReadStats


def gene_source(gfile: GenotypeFile, variants: dict[str, Any], bed: str | None):
    """The gene membership source of the configuration, or None."""
    settings = variants["gene_tests"]
    if not settings["enabled"]:
        return None
    if settings["source"] == "bed":
        if bed is None:
            from naipo_bio.errors import ConfigError

            raise ConfigError(
                "gene_tests.source is bed, but the site's germline section names no "
                "gene_bed file."
            )
        return BedGenes(bed)
    if gfile.annotation_key is None:
        log.warning(
            "%s: no CSQ/ANN annotation, so no gene blocks are built. Annotate the VCF "
            "or set gene_tests.source: bed.", gfile.path,
        )  # fmt: skip
        return None
    return AnnotationGenes(
        gfile.annotation_key, gfile.annotation_fields,
        set(settings["consequences"]), settings["gene_key"],
    )  # fmt: skip


def compute_chunk(
    gfile: GenotypeFile,
    region: Region,
    columns: np.ndarray,
    design: cox.SurvivalDesign,
    null: cox.NullModel,
    variants: dict[str, Any],
    genes=None,
) -> ChunkResult:
    """Decode, QC and score every variant of ``region``.

    ``columns`` gives, for each analysed patient in the design's input order,
    the position of its sample in the VCF. Dosages are decoded straight into
    the design's sorted patient order, so the score kernel reads them as they
    are.
    """
    sorted_columns = np.ascontiguousarray(columns[design.order])
    qc = QCSettings(**variants["qc"])
    max_site_maf = variants["gene_tests"]["max_site_maf"]
    n = columns.shape[0]
    stats = ReadStats()
    parts = []
    rare_rows = []
    rare_cells = []
    next_idx = 0
    raw_blocks = prefetch(gfile.raw_blocks(region, stats, sorted_columns))
    for raw in raw_blocks:
        block = gfile.finish(raw, stats, impute=True)
        t = len(block.pos)
        if t == 0:
            continue
        qc_stats, failed = variant_qc(block.counts, n, qc)
        called = block.counts[:, _dosage.COUNT_CALLED]
        tested = (failed == None) & (called > 0)  # noqa: E711
        # Gene blocks keep variants that fail only the single-variant MAC/MAF
        # rules: rare and even monomorphic variants belong in gene tests, and a
        # monomorphic site still adds its allele number to the pooled frequency.
        block_eligible = (called > 0) & np.array(
            [f is None or f in RARE_RULES for f in failed], dtype=bool
        )
        status = np.where(tested, STATUS_OK, STATUS_QC_FAILED).astype(object)
        reason = np.where(called > 0, failed, "no called genotypes").astype(object)
        reason[tested] = None
        imputed = block.dosage
        u = np.full(t, np.nan)
        v = np.full(t, np.nan)
        rows = np.flatnonzero(tested)
        if rows.size == t:
            u, v = cox.score_statistics_sorted(design, null, imputed)
        elif rows.size:
            u[rows], v[rows] = cox.score_statistics_sorted(design, null, imputed[rows])
        carriers = block.counts[:, _dosage.COUNT_CARRIERS]
        gene_text = np.full(t, None, dtype=object)
        if genes is not None:
            for i in range(t):
                found = _variant_genes(genes, block, i)
                if not found:
                    continue
                gene_text[i] = ";".join(f"{g}:{c}" for g, c in sorted(found.items()))
                if not block_eligible[i] or qc_stats["maf"][i] > max_site_maf:
                    continue
                key = f"{block.contig[i]}:{block.pos[i]}:{block.ref[i]}:{block.alt[i]}"
                for gene, consequence in found.items():
                    rare_rows.append(
                        (next_idx, key, gene, consequence, qc_stats["ac"][i],
                         qc_stats["an"][i], int(carriers[i]))
                    )  # fmt: skip
                # Side-file columns are patient positions in input order.
                nonzero = np.flatnonzero(imputed[i] != 0)
                rare_cells.append(
                    np.column_stack(
                        [
                            np.full(nonzero.size, next_idx),
                            design.order[nonzero],
                            imputed[i, nonzero],
                        ]
                    )
                )
                next_idx += 1
        parts.append(
            pd.DataFrame(
                {
                    "contig": block.contig,
                    "pos": block.pos,
                    "ref": block.ref,
                    "alt": block.alt,
                    "status": status,
                    "reason": reason,
                    "n": called.astype(np.int64),
                    "call_rate": qc_stats["call_rate"],
                    "ac": qc_stats["ac"],
                    "an": qc_stats["an"],
                    "n_carriers": carriers.astype(np.int64),
                    "hwe_p": qc_stats["hwe_p"],
                    "u": u,
                    "v": v,
                    "genes": gene_text,
                }
            )  # fmt: skip
        )
    table = pd.concat(parts, ignore_index=True) if parts else empty_variant_frame()
    repeated = table.duplicated(["contig", "pos", "ref", "alt"])
    if repeated.any():
        row = table.loc[repeated].iloc[0]
        raise InputError(
            f"{gfile.path}: the variant {row.contig}:{row.pos} {row.ref}>{row.alt} "
            f"occurs in more than one record ({int(repeated.sum())} repeat(s) in "
            f"{region.name}); its scores would count twice in the pooled test. "
            "Remove the repeats with 'bcftools norm --rm-dup exact' and index again."
        )
    rare_variants = pd.DataFrame(rare_rows, columns=list(RARE_VARIANT_COLUMNS))
    cells = np.vstack(rare_cells) if rare_cells else np.empty((0, 3))
    rare_dosage = pd.DataFrame(
        {"idx": cells[:, 0].astype(np.int64), "col": cells[:, 1].astype(np.int64),
         "value": cells[:, 2]}
    )  # fmt: skip
    return ChunkResult(table, rare_variants, rare_dosage, stats)


def prefetch(iterator, depth: int = 2):
    """Run ``iterator`` in a reader thread, ``depth`` items ahead of the caller.

    The genotype parser releases the GIL, so decoding the next block overlaps
    with the kernels that score the current one. The reader runs no parallel
    numba kernel, so the two threads never launch parallel regions together.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def reader() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the caller, which re-raises it
            items.put(_Failure(exc))
            return
        items.put(done)

    thread = threading.Thread(target=reader, name="genotype-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


@dataclass
class _Failure:
    error: BaseException


def _variant_genes(genes, block, i) -> dict[str, str]:
    if isinstance(genes, BedGenes):
        return genes.genes(block.contig[i], int(block.pos[i]))
    return genes.genes(
        block.annotation[i], block.ref[i], block.alts[i], block.alt_index[i]
    )


def empty_variant_frame() -> pd.DataFrame:
    return pa.Table.from_pylist([], schema=VARIANT_SCHEMA).to_pandas()


def write_chunk(result: ChunkResult, prefix: str | Path) -> None:
    """Write a chunk's tables: ``prefix.variants.parquet`` (releasable rows),
    ``prefix.rare.parquet`` and ``prefix.rare_dosage.parquet`` (site-local)."""
    prefix = str(prefix)
    rare = pa.Table.from_pandas(result.rare_variants, preserve_index=False)
    rare_dosage = pa.Table.from_pandas(result.rare_dosage, preserve_index=False)
    outputs = (
        (f"{prefix}.variants.parquet", variant_arrow(result.table)),
        (f"{prefix}.rare.parquet", rare),
        (f"{prefix}.rare_dosage.parquet", rare_dosage),
    )
    for path, table in outputs:
        with atomic_file(path) as tmp:
            pq.write_table(table, tmp, compression="zstd")


def read_chunk(prefix: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    prefix = str(prefix)
    return (
        pq.read_table(f"{prefix}.variants.parquet").to_pandas(),
        pq.read_table(f"{prefix}.rare.parquet").to_pandas(),
        pq.read_table(f"{prefix}.rare_dosage.parquet").to_pandas(),
    )


def variant_arrow(table: pd.DataFrame) -> pa.Table:
    """Convert a per-variant frame to the bundle schema, without pandas metadata."""
    arrays = {}
    for field in VARIANT_SCHEMA:
        series = table[field.name]
        if pa.types.is_integer(field.type):
            arrays[field.name] = pa.array(
                pd.array(series, dtype="Int64"), type=field.type
            )
        elif field.type == pa.string():
            arrays[field.name] = pa.array(
                series.astype(object).where(series.notna(), None).tolist(),
                type=field.type,
            )
        else:
            arrays[field.name] = pa.array(series, type=field.type, from_pandas=True)
    return pa.Table.from_pydict(arrays, schema=VARIANT_SCHEMA)


def gene_blocks(
    chunks: list[tuple[pd.DataFrame, pd.DataFrame]],
    design: cox.SurvivalDesign,
    null: cox.NullModel,
) -> pd.DataFrame:
    """Score vectors and covariance blocks per gene from the chunks' rare dosages.

    ``chunks`` holds (rare_variants, rare_dosage) per chunk, in genome order.
    Returns one row per gene with the GENE_BLOCK_SCHEMA columns and
    ``n_carriers`` (summed over its variants; for the disclosure check).
    """
    n = design.n
    variant_frames = []
    dosage_frames = []
    offset = 0
    for rare_variants, rare_dosage in chunks:
        if rare_variants.empty:
            continue
        variant_frames.append(rare_variants.assign(idx=rare_variants.idx + offset))
        dosage_frames.append(rare_dosage.assign(idx=rare_dosage.idx + offset))
        offset += int(rare_variants.idx.max()) + 1
    rows = []
    if not variant_frames:
        return pd.DataFrame(columns=[*GENE_BLOCK_SCHEMA.names, "n_carriers"])
    variants = pd.concat(variant_frames, ignore_index=True)
    dosage = pd.concat(dosage_frames, ignore_index=True)
    cells_by_idx = dosage.groupby("idx")
    for gene, members in variants.groupby("gene", sort=True):
        members = members.drop_duplicates("idx")
        G = np.zeros((len(members), n))
        for row, idx in enumerate(members.idx):
            if idx in cells_by_idx.groups:
                cells = cells_by_idx.get_group(idx)
                G[row, cells.col.to_numpy()] = cells.value.to_numpy()
        u, V = cox.score_covariance(design, null, G)
        upper = V[np.triu_indices(len(members))]
        rows.append(
            {
                "gene": gene,
                "variants": members.key.tolist(),
                "consequences": members.consequence.tolist(),
                "ac": members.ac.astype(float).tolist(),
                "an": members.an.astype(float).tolist(),
                "u": u.tolist(),
                "cov": upper.tolist(),
                "n_carriers": int(members.n_carriers.sum()),
            }
        )
    return pd.DataFrame(rows)


def gene_block_arrow(blocks: pd.DataFrame) -> pa.Table:
    columns = {
        name: blocks[name].tolist() if len(blocks) else []
        for name in GENE_BLOCK_SCHEMA.names
    }
    return pa.Table.from_pydict(columns, schema=GENE_BLOCK_SCHEMA)
