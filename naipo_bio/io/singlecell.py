"""Single-cell input: pseudobulk expression per patient and cell type.

Raw counts of the cells of each (patient, cell type) pair are summed with
scanpy's ``aggregate`` (never normalized values: a sum of normalized values is
not a pseudobulk), then each pseudobulk is normalized to log2(CPM + 1). Two
biomarker kinds result:

- ``pseudobulk``: a gene in a cell type, id ``CELLTYPE::GENE``;
- ``cell_proportion``: the fraction of a patient's cells of each type.

A pair with fewer than ``min_cells`` cells gives missing values for that
patient and cell type.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from naipo_bio.errors import DataQualityWarning, InputError

log = logging.getLogger(__name__)

CPM = 1e6


@dataclass
class SingleCellBiomarkers:
    """Pseudobulk and proportion biomarkers, patients as columns (NaN = missing)."""

    patients: list[str]
    pseudobulk_ids: list[str]
    pseudobulk: np.ndarray
    proportion_ids: list[str]
    proportions: np.ndarray
    counts: dict[str, int]


def read_single_cell(config: dict[str, Any]) -> SingleCellBiomarkers:
    """Read cells, check raw counts and barcodes, and build the biomarkers."""
    import anndata
    import scanpy as sc

    path = Path(config["path"])
    if not path.exists():
        raise InputError(f"The single-cell file was not found: {path}")
    try:
        adata = anndata.read_h5ad(path)
    except (OSError, KeyError) as exc:
        raise InputError(f"Could not read the AnnData file {path}: {exc}") from None
    patient_col = config.get("patient_column", "patient")
    type_col = config.get("cell_type_column", "cell_type")
    for column in (patient_col, type_col):
        if column not in adata.obs.columns:
            raise InputError(
                f"{path}: obs has no column {column!r} (columns: "
                f"{list(adata.obs.columns)})."
            )
    repeated = adata.obs_names[adata.obs_names.duplicated()].unique()
    if len(repeated):
        patients = adata.obs.loc[
            adata.obs_names.isin(repeated[:1]), patient_col
        ].unique()
        raise InputError(
            f"{path}: {len(repeated)} cell barcode(s) occur more than once, e.g. "
            f"{list(repeated[:3])} (patients {list(map(str, patients))}). Barcodes "
            "collide across samples; prefix each barcode with its sample before "
            "concatenating the samples."
        )
    layer = config.get("layer")
    if layer is not None and layer not in adata.layers:
        raise InputError(f"{path}: no layer {layer!r}; layers: {list(adata.layers)}.")
    matrix = adata.layers[layer] if layer is not None else adata.X
    coo = sparse.coo_matrix(matrix)
    data = coo.data
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(data) | (data < 0) | (np.abs(data - np.round(data)) > 1e-9)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        cell = adata.obs_names[coo.row[i]]
        gene = adata.var_names[coo.col[i]]
        raise InputError(
            f"{path}: {'layer ' + layer if layer else 'the X matrix'} does not hold "
            f"raw counts: cell {cell!r}, gene {gene!r} has {float(data[i])} "
            f"({int(bad.sum())} such value(s); counts are finite non-negative "
            "integers). Pseudobulk needs raw counts: name the layer that keeps "
            "them with single_cell.layer."
        )
    repeated_genes = adata.var_names.duplicated(keep=False)
    if repeated_genes.any():
        names = sorted(set(adata.var_names[repeated_genes]))
        warnings.warn(
            f"{path}: {len(names)} gene name(s) occur more than once in var and are "
            f"excluded (not summed or renamed): {names[:8]}.",
            DataQualityWarning,
            stacklevel=2,
        )
        adata = adata[:, ~repeated_genes].copy()
    if adata.obs[[patient_col, type_col]].isna().any().any():
        raise InputError(f"{path}: some cells have no {patient_col} or {type_col}.")
    summed = sc.get.aggregate(
        adata, by=[patient_col, type_col], func="sum", layer=layer
    )
    sums = summed.layers["sum"]
    sums = sums.toarray() if hasattr(sums, "toarray") else np.asarray(sums)
    cells = adata.obs.groupby([patient_col, type_col], observed=True).size()
    obs = summed.obs[[patient_col, type_col]].astype(str)
    n_cells = np.array(
        [
            cells.get((p, t), 0)
            for p, t in zip(obs[patient_col], obs[type_col], strict=True)
        ]
    )
    library = sums.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalized = np.log2(sums / np.where(library > 0, library, np.nan) * CPM + 1.0)
    enough = n_cells >= config.get("min_cells", 10)
    patients = sorted(obs[patient_col].unique())
    types = sorted(obs[type_col].unique())
    genes = list(adata.var_names)
    patient_index = {p: i for i, p in enumerate(patients)}
    type_index = {t: i for i, t in enumerate(types)}
    pseudobulk = np.full((len(types) * len(genes), len(patients)), np.nan)
    for row, (patient, cell_type) in enumerate(
        zip(obs[patient_col], obs[type_col], strict=True)
    ):
        if not enough[row]:
            continue
        block = type_index[cell_type] * len(genes)
        pseudobulk[block : block + len(genes), patient_index[patient]] = normalized[row]
    ids = [f"{t}::{g}" for t in types for g in genes]
    totals = adata.obs[patient_col].astype(str).value_counts()
    proportions = np.zeros((len(types), len(patients)))
    for (patient, cell_type), count in cells.items():
        proportions[type_index[str(cell_type)], patient_index[str(patient)]] = (
            count / totals[str(patient)]
        )
    log.info(
        "%s: %d cells, %d patients, %d cell types; %d of %d pseudobulks below "
        "min_cells", path, adata.n_obs, len(patients), len(types),
        int((~enough).sum()), len(enough),
    )  # fmt: skip
    counts = {
        "cells": int(adata.n_obs),
        "pseudobulks_below_min_cells": int((~enough).sum()),
    }
    return SingleCellBiomarkers(
        patients, ids, pseudobulk, list(types), proportions, counts
    )
