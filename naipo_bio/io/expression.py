"""Bulk expression: genes x samples TSV or AnnData .h5ad, on the log2 scale.

Every site brings its values to log2 expression before any model sees them:

- ``counts``: non-negative integers; counts per million (scanpy's
  ``normalize_total``), then log2(x + 1);
- ``estimated_counts``: non-negative (RSEM or salmon expected counts); as counts;
- ``linear``: non-negative (TPM, FPKM, RSEM normalized); log2(x + 1);
- ``log2``: no value above 50; used as given;
- ``auto``: one of the above, decided from the values.

Gene identifiers become keys that sites share: an Ensembl gene id loses its
version suffix (kept in the label); TCGA's ``SYMBOL|ENTREZ`` pairs stay whole;
probe ids are used as given; symbols are mapped to Ensembl ids only through a
mapping file named in the configuration. A key that occurs twice in one file,
two symbols mapped to one gene, symbols absent from the map, spreadsheet
dates (``1-Mar``) and suffix artifacts (``HSPA14-1``) are excluded and listed,
never summed or renamed.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from naipo_bio.errors import DataQualityWarning, InputError
from naipo_bio.io.ids import check_unique_samples
from naipo_bio.io.tables import NA_VALUES, check_unique_columns, delimiter_for

log = logging.getLogger(__name__)

ENSEMBL = re.compile(r"^(ENS[A-Z]*G\d{11})(?:\.(\d+))?$")
TCGA_PAIR = re.compile(r"^([^|]+)\|(\d+)$")
MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
DATE_LIKE = re.compile(rf"^(\d{{1,2}}-({MONTHS})|({MONTHS})-\d{{1,2}})$", re.IGNORECASE)
SUFFIX_ARTIFACT = re.compile(r"^(.+?)[-.](\d+)$")

#: Largest value still read as log2 when scale is "auto" or "log2". log2(x + 1)
#: of TPM/RSEM values stays below about 25; linear values of expressed genes
#: exceed 100.
LOG2_MAX = 50.0

#: Counts-per-million target of normalize_total for count inputs.
CPM = 1e6


@dataclass
class ExpressionMatrix:
    """Expression of genes (rows) in samples (columns), log2 scale, NaN = missing."""

    gene_ids: list[str]
    labels: list[str]
    samples: list[str]
    matrix: np.ndarray
    source: Path
    scale: str
    transform: str = "none"
    counts: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, list[str]] = field(default_factory=dict)


def gene_key(identifier: str) -> tuple[str, str]:
    """Canonical key and display label of a gene identifier.

    >>> gene_key("ENSG00000141510.16")
    ('ENSG00000141510', 'ENSG00000141510.16')
    >>> gene_key("MKI67|4288")
    ('MKI67|4288', 'MKI67')
    """
    identifier = identifier.strip()
    match = ENSEMBL.match(identifier)
    if match:
        return match.group(1), identifier
    match = TCGA_PAIR.match(identifier)
    if match:
        symbol = match.group(1)
        return identifier, "" if symbol == "?" else symbol
    return identifier, identifier


def id_type_of(identifiers: list[str]) -> str:
    """ensembl, tcga or symbol, from the identifiers themselves."""
    sample = [i.strip() for i in identifiers[:500]]
    if sample and all(ENSEMBL.match(i) for i in sample):
        return "ensembl"
    if sample and all(TCGA_PAIR.match(i) for i in sample):
        return "tcga"
    return "symbol"


def read_gene_map(path: str | Path) -> dict[str, list[str]]:
    """Symbol -> Ensembl gene ids from a TSV with columns symbol and gene_id."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"The gene map file was not found: {path}")
    frame = pd.read_csv(path, sep="\t", dtype=str, comment="#")
    missing = {"symbol", "gene_id"} - set(frame.columns)
    if missing:
        raise InputError(f"{path}: the gene map needs columns symbol and gene_id.")
    mapping: dict[str, list[str]] = {}
    for symbol, gene_id in zip(frame.symbol, frame.gene_id, strict=True):
        key, _ = gene_key(gene_id)
        mapping.setdefault(symbol.strip(), []).append(key)
    return mapping


def _keys_from_symbols(symbols: list[str], mapping: dict[str, list[str]]):
    """Keys, labels, and the reasons symbols were excluded."""
    reasons: dict[str, list[str]] = {}
    keys: list[str | None] = []
    labels: list[str] = []
    counts = pd.Series(symbols).value_counts()
    for symbol in symbols:
        labels.append(symbol)
        if counts[symbol] > 1:
            reasons.setdefault("repeated symbol (ambiguous)", []).append(symbol)
            keys.append(None)
        elif DATE_LIKE.match(symbol):
            reasons.setdefault("date-like (spreadsheet conversion)", []).append(symbol)
            keys.append(None)
        elif symbol not in mapping:
            match = SUFFIX_ARTIFACT.match(symbol)
            if match and match.group(1) in mapping:
                reason = "suffix artifact of a mapped symbol"
            else:
                reason = "not in the gene map"
            reasons.setdefault(reason, []).append(symbol)
            keys.append(None)
        elif len(set(mapping[symbol])) > 1:
            reasons.setdefault("maps to several genes", []).append(symbol)
            keys.append(None)
        else:
            keys.append(mapping[symbol][0])
    targets = pd.Series([k for k in keys if k is not None]).value_counts()
    for i, key in enumerate(keys):
        if key is not None and targets[key] > 1:
            reasons.setdefault("several symbols map to one gene", []).append(symbols[i])
            keys[i] = None
    return keys, labels, {r: sorted(set(s)) for r, s in reasons.items()}


def read_expression(config: dict[str, Any]) -> ExpressionMatrix:
    """Read a site's expression input and put it on the log2 scale."""
    path = Path(config["path"])
    if not path.exists():
        raise InputError(f"The expression file was not found: {path}")
    fmt = config.get("format", "auto")
    if fmt == "auto":
        fmt = "h5ad" if path.suffix == ".h5ad" else "tsv"
    if fmt == "h5ad":
        raw_ids, samples, values = _read_h5ad(path, config.get("layer"))
    else:
        raw_ids, samples, values = _read_tsv(path, config.get("gene_column"))
    check_unique_samples(samples, path, "expression table")

    id_type = config.get("gene_id_type", "auto")
    if id_type == "auto":
        id_type = id_type_of(raw_ids)
        if id_type == "symbol" and not config.get("gene_map"):
            raise InputError(
                f"{path}: gene ids such as {raw_ids[:3]} are neither Ensembl ids nor "
                "TCGA SYMBOL|ENTREZ pairs. Symbols are mapped only through a pinned "
                "annotation: name a gene_map (symbol, gene_id) in the site's "
                "expression section, or declare gene_id_type: probe for probe ids."
            )
    excluded: dict[str, list[str]] = {}
    if id_type == "symbol":
        if not config.get("gene_map"):
            raise InputError(
                f"{path}: gene_id_type is symbol but no gene_map is named."
            )
        keys, labels, excluded = _keys_from_symbols(
            [i.strip() for i in raw_ids], read_gene_map(config["gene_map"])
        )
    elif id_type == "probe":
        keys = [i.strip() for i in raw_ids]
        labels = list(keys)
    else:
        pairs = [gene_key(g) for g in raw_ids]
        keys = [k for k, _ in pairs]
        labels = [label for _, label in pairs]
        repeated = pd.Series(keys).duplicated(keep=False).to_numpy()
        if repeated.any():
            excluded["repeated gene id"] = sorted(
                {k for k, r in zip(keys, repeated, strict=True) if r}
            )
            keys = [None if r else k for k, r in zip(keys, repeated, strict=True)]
    keep = np.array([k is not None for k in keys], dtype=bool)
    if excluded:
        listing = "; ".join(f"{reason}: {ids[:8]}" for reason, ids in excluded.items())
        warnings.warn(
            f"{path}: {int((~keep).sum())} gene row(s) excluded (not summed or "
            f"renamed): {listing}.",
            DataQualityWarning,
            stacklevel=2,
        )
    values = values[keep]
    kept_ids = [i for i, kept in zip(raw_ids, keep, strict=True) if kept]
    infinite = np.isinf(values)
    if infinite.any():
        cell = _first_cell(infinite, values, kept_ids, samples)
        raise InputError(
            f"{path}: infinite expression value at {cell}. Replace it with the "
            "measured value, or with NA if it is missing."
        )
    negative = values < 0
    if negative.any() and values.size and np.nanmax(values) > LOG2_MAX:
        # Neither scale fits: a linear table has no negative values and a log2
        # table does not reach 2**50.
        cell = _first_cell(negative, values, kept_ids, samples)
        raise InputError(
            f"{path}: values reach {np.nanmax(values):.4g}, far above what a log2 "
            f"table holds, yet there is a negative value at {cell}. A linear table "
            "cannot be negative: fix that value (NA if it is missing)."
        )
    scale = _check_scale(values, config.get("scale", "auto"), path, kept_ids, samples)
    values, transform = _to_log2(values, scale)
    missing = int(np.isnan(values).sum())
    if missing:
        log.info(
            "%s: %d missing value(s); each excludes that patient for that gene only",
            path, missing,
        )  # fmt: skip
    return ExpressionMatrix(
        gene_ids=[k for k, kept in zip(keys, keep, strict=True) if kept],
        labels=[lab for lab, kept in zip(labels, keep, strict=True) if kept],
        samples=samples,
        matrix=values,
        source=path,
        scale=scale,
        transform=transform,
        counts={
            "genes_read": len(keys),
            "genes_excluded": int((~keep).sum()),
            "missing_values": missing,
        },
        excluded=excluded,
    )


#: Spellings of the scales, as sites write them.
SCALE_ALIASES = {
    "tpm": "linear", "fpkm": "linear", "rpkm": "linear", "rsem": "linear",
    "log2_tpm": "log2", "log2_cpm": "log2", "log2_fpkm": "log2",
}  # fmt: skip


def _first_cell(mask: np.ndarray, values: np.ndarray, genes, samples) -> str:
    """Name the first cell where ``mask`` is set: gene, sample and value."""
    row, column = (int(i[0]) for i in np.nonzero(mask))
    return (
        f"gene {genes[row]!r}, sample {samples[column]!r} (value {values[row, column]})"
    )


def _check_scale(
    values: np.ndarray, declared: str, path: Path, genes: list[str], samples
) -> str:
    """Check the declared scale against the values (or decide it for auto)."""
    declared = SCALE_ALIASES.get(declared, declared)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InputError(f"{path}: the expression table has no finite values.")
    top = float(finite.max())
    low = float(finite.min())
    integers = bool(np.all(np.abs(finite - np.round(finite)) < 1e-9))
    if declared == "auto":
        if low >= 0 and integers and top > LOG2_MAX:
            declared = "counts"
        elif low >= 0 and top > LOG2_MAX:
            declared = "linear"
        else:
            declared = "log2"
        log.info("%s: max value %.4g, read as %s (scale: auto)", path, top, declared)
        return declared
    if declared in ("counts", "estimated_counts", "linear") and low < 0:
        raise InputError(
            f"{path}: scale is {declared}, but the table has negative values (min "
            f"{low:.3g}); these look log-transformed. Declare scale: log2."
        )
    if declared == "counts" and not integers:
        if top <= LOG2_MAX:
            raise InputError(
                f"{path}: scale is counts, but the values look log-transformed "
                f"(non-integers, max {top:.3g}). Declare scale: log2 if they are."
            )
        with np.errstate(invalid="ignore"):
            fraction = np.abs(values - np.round(values)) >= 1e-9
        cell = _first_cell(fraction, values, genes, samples)
        raise InputError(
            f"{path}: scale is counts, but some values are not integers (first at "
            f"{cell}). Declare scale: estimated_counts for RSEM or salmon expected "
            "counts, or linear for TPM/FPKM."
        )
    if (
        declared in ("counts", "estimated_counts", "linear")
        and top <= LOG2_MAX
        and not integers
    ):
        raise InputError(
            f"{path}: scale is {declared}, but every value is at most {top:.3g} with "
            "decimals, which looks log-transformed. Declare scale: log2 if it is."
        )
    if declared == "log2" and top > LOG2_MAX:
        raise InputError(
            f"{path}: scale is log2, but values reach {top:.4g}, which looks linear. "
            "Declare scale: linear (or counts)."
        )
    return declared


def _to_log2(values: np.ndarray, scale: str) -> tuple[np.ndarray, str]:
    if scale in ("counts", "estimated_counts"):
        import anndata
        import scanpy as sc

        # Samples as observations; NaN would poison the library sizes, so it
        # counts as 0 there and is restored afterwards.
        missing = np.isnan(values)
        filled = np.where(missing, 0.0, values)
        empty = filled.sum(axis=0) == 0
        adata = anndata.AnnData(filled.T.astype(np.float64))
        with warnings.catch_warnings():
            # Samples with no counts are set missing below; scanpy's warning
            # about them adds nothing.
            warnings.filterwarnings("ignore", message="Some cells have zero counts")
            sc.pp.normalize_total(adata, target_sum=CPM)
        sc.pp.log1p(adata, base=2)
        out = np.asarray(adata.X, dtype=np.float64).T
        out[missing] = np.nan
        out[:, empty] = np.nan
        return out, "log2(CPM + 1), CPM by scanpy normalize_total"
    if scale == "linear":
        return np.log2(values + 1.0), "log2(x + 1)"
    return values, "none (log2 as given)"


def _read_tsv(path: Path, gene_column: str | None):
    check_unique_columns(path, "expression table")
    try:
        frame = pd.read_csv(
            path, sep=delimiter_for(path), dtype=str, keep_default_na=False,
            na_filter=False, index_col=None,
        )  # fmt: skip
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise InputError(f"Could not read the expression file {path}: {exc}") from None
    if frame.shape[1] < 2:
        raise InputError(
            f"{path}: expected a gene id column and at least one sample column."
        )
    gene_column = gene_column or frame.columns[0]
    if gene_column not in frame.columns:
        raise InputError(f"{path}: no gene id column {gene_column!r}.")
    ids = frame[gene_column].tolist()
    samples = [c for c in frame.columns if c != gene_column]
    text = frame[samples]
    missing = text.apply(lambda col: col.str.strip().isin(NA_VALUES)).to_numpy()
    numeric = text.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(numeric) & ~missing
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise InputError(
            f"{path}: value {text.iat[row, col]!r} for gene {ids[row]!r}, sample "
            f"{samples[col]!r} (line {row + 2}) is not a number."
        )
    return ids, samples, numeric


def _read_h5ad(path: Path, layer: str | None):
    import anndata

    try:
        adata = anndata.read_h5ad(path)
    except (OSError, KeyError) as exc:
        raise InputError(f"Could not read the AnnData file {path}: {exc}") from None
    if layer is not None and layer not in adata.layers:
        raise InputError(
            f"{path}: no layer {layer!r}; layers present: {list(adata.layers)}."
        )
    matrix = adata.layers[layer] if layer is not None else adata.X
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    values = np.asarray(matrix, dtype=np.float64).T
    return list(adata.var_names), list(adata.obs_names), values
