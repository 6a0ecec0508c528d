"""Coarse histograms of continuous biomarkers, and pooled quantiles from them.

Kaplan-Meier groups "high" and "low" need one cut point for all sites. Each
site releases, per continuous biomarker, a histogram on a fixed grid whose
neighbouring bins are merged until every bin holds at least ``min_cell``
patients, so no bin describes one or two patients. The coordinator sums the
sites' piecewise-linear distribution functions and solves for the quantile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Grid width per kind (log2 units for expression, fraction for proportions).
GRID = {"expression": 0.25, "pseudobulk": 0.25, "cell_proportion": 0.02}


def coarse_histogram(values: np.ndarray, width: float, min_cell: int) -> list[tuple]:
    """(low, high, count) bins of the non-missing ``values``, each with at least
    ``min_cell`` values (one bin when there are fewer in all)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return []
    index = np.floor(values / width).astype(np.int64)
    cells, counts = np.unique(index, return_counts=True)
    bins = []
    start = None
    running = 0
    for cell, count in zip(cells, counts, strict=True):
        if start is None:
            start = cell
        running += count
        if running >= min_cell:
            bins.append([start * width, (cell + 1) * width, running])
            start = None
            running = 0
    if running:
        if bins:
            bins[-1][1] = (cells[-1] + 1) * width
            bins[-1][2] += running
        else:
            bins.append([start * width, (cells[-1] + 1) * width, running])
    return [tuple(b) for b in bins]


def pooled_quantile(bins: pd.DataFrame, q: float) -> float:
    """Quantile q of the pooled distribution of all rows (columns low, high,
    count), values spread evenly within each bin."""
    if bins.empty:
        return float("nan")
    total = bins["count"].sum()
    target = q * total
    low = float(bins["low"].min())
    high = float(bins["high"].max())

    def below(x: float) -> float:
        inside = np.clip((x - bins["low"]) / (bins["high"] - bins["low"]), 0.0, 1.0)
        return float((inside * bins["count"]).sum())

    for _ in range(100):
        mid = 0.5 * (low + high)
        if below(mid) < target:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
