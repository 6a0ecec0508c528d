"""Bulk expression: genes x samples TSV or AnnData .h5ad, on the log2 scale.

Gene identifiers are keyed so that sites agree: an Ensembl gene id loses its
version suffix (kept in the label), and TCGA's ``SYMBOL|ENTREZ`` pairs are kept
whole with the symbol as the label. A key that occurs twice in one file is
excluded and listed, never summed.
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

#: Largest value still read as log2 when scale is "auto". log2(x + 1) of
#: RSEM/TPM values stays below about 25; linear values of expressed genes
#: exceed 100.
AUTO_LOG2_MAX = 50.0


@dataclass
class ExpressionMatrix:
    """Expression of genes (rows) in samples (columns), log2 scale, NaN = missing."""

    gene_ids: list[str]
    labels: list[str]
    samples: list[str]
    matrix: np.ndarray
    source: Path
    scale: str
    counts: dict[str, int] = field(default_factory=dict)


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

    keys_labels = [gene_key(g) for g in raw_ids]
    keys = pd.Series([k for k, _ in keys_labels])
    duplicated = keys.duplicated(keep=False).to_numpy()
    counts = {"genes_read": len(keys), "genes_duplicated": int(duplicated.sum())}
    if duplicated.any():
        listed = sorted(set(keys[duplicated]))
        warnings.warn(
            f"{path}: {len(listed)} gene id(s) occur more than once and are excluded "
            f"(not summed): {listed[:10]}{' ...' if len(listed) > 10 else ''}.",
            DataQualityWarning,
            stacklevel=2,
        )
    keep = ~duplicated
    values = values[keep]
    scale = _resolve_scale(values, config.get("scale", "auto"), path)
    if scale == "linear":
        negative = np.nanmin(values) < 0 if values.size else False
        if negative:
            raise InputError(
                f"{path}: scale is linear but the table has negative values "
                f"(min {np.nanmin(values):.3g}); declare scale: log2."
            )
        values = np.log2(values + 1.0)
    counts["missing_values"] = int(np.isnan(values).sum())
    return ExpressionMatrix(
        gene_ids=[k for (k, _), kept in zip(keys_labels, keep, strict=True) if kept],
        labels=[lab for (_, lab), kept in zip(keys_labels, keep, strict=True) if kept],
        samples=samples,
        matrix=values,
        source=path,
        scale="log2",
        counts=counts,
    )


def _resolve_scale(values: np.ndarray, declared: str, path: Path) -> str:
    if declared != "auto":
        return declared
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InputError(f"{path}: the expression table has no finite values.")
    top = float(finite.max())
    scale = "linear" if top > AUTO_LOG2_MAX and finite.min() >= 0 else "log2"
    log.info("%s: max value %.4g, read as %s (scale: auto)", path, top, scale)
    return scale


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
