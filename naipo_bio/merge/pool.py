"""Pooling per-site statistics into one association table per biomarker kind.

Pooled score test: z = sum_s U_s / sqrt(sum_s V_s), over the sites where the
biomarker has status "ok". This equals the score test of the Cox model
stratified by site with site-specific covariate effects, fitted to all
patients together. The one-step estimate U/V (SE 1/sqrt(V)) is accurate only
near a log hazard ratio of 0; per-site fits are pooled by fixed- and
random-effects meta-analysis alongside.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from naipo_bio.bundle.read import Bundle
from naipo_bio.contract import STATUS_OK, STATUS_SUPPRESSED
from naipo_bio.stats.meta import bh_qvalues, meta_analysis, two_sided_p

log = logging.getLogger(__name__)

COUNT_COLUMNS = ("n", "n_events", "n_carriers", "n_carrier_events")


def site_table(bundles: list[Bundle], kind: str) -> pd.DataFrame:
    """Per-site rows of ``kind`` from every bundle that has it, with a site column."""
    frames = []
    for bundle in bundles:
        if kind not in bundle.manifest["tables"]:
            continue
        frame = bundle.table(kind)
        frame.insert(0, "site", bundle.site_id)
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def _sum_if_complete(values: pd.Series) -> float:
    """Sum of a count over sites, or NaN if any contributing site withheld it."""
    return float(values.sum()) if values.notna().all() else np.nan


def pool_kind(sites: pd.DataFrame, n_bundles: int) -> pd.DataFrame:
    """Pooled association table of one kind, sorted by the score-test p-value."""
    ok = sites.loc[sites.status == STATUS_OK]
    by_id = sites.groupby("biomarker_id", sort=False)
    pooled = pd.DataFrame(
        index=pd.Index(sites.biomarker_id.unique(), name="biomarker_id")
    )
    pooled["gene"] = by_id.gene.first()
    # Sites may label one gene differently (Ensembl version, symbol): list the
    # labels where they differ, so version mismatches are visible.
    labels = by_id.gene.agg(lambda s: ",".join(sorted({str(v) for v in s if v})))
    pooled["site_labels"] = labels.where(labels.str.contains(","), "")
    pooled["n_sites_present"] = by_id.size()
    pooled["n_sites_suppressed"] = (
        sites.assign(hit=sites.status == STATUS_SUPPRESSED)
        .groupby("biomarker_id")
        .hit.sum()
    )
    uninformative = ~sites.status.isin([STATUS_OK, STATUS_SUPPRESSED])
    pooled["n_sites_uninformative"] = (
        sites.assign(hit=uninformative).groupby("biomarker_id").hit.sum()
    )
    ok_groups = ok.groupby("biomarker_id", sort=False)
    pooled["n_sites_tested"] = ok_groups.size()
    pooled["sites_tested"] = ok_groups.site.agg(",".join)
    pooled["n_sites_tested"] = pooled.n_sites_tested.fillna(0).astype(np.int64)
    pooled["n_sites_missing"] = n_bundles - pooled.n_sites_present
    for column in COUNT_COLUMNS:
        pooled[column] = ok_groups[column].agg(_sum_if_complete)
        pooled[column] = pooled[column].astype("Int64")
    pooled["u"] = ok_groups.u.sum()
    pooled["v"] = ok_groups.v.sum()
    pooled[["u", "v"]] = pooled[["u", "v"]].fillna(0.0)
    tested = pooled.v > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled["z"] = np.where(tested, pooled.u / np.sqrt(pooled.v), np.nan)
        pooled["log_hr_onestep"] = np.where(tested, pooled.u / pooled.v, np.nan)
        pooled["se_onestep"] = np.where(tested, 1.0 / np.sqrt(pooled.v), np.nan)
    pooled["p"] = two_sided_p(pooled.z.to_numpy())
    pooled["q"] = bh_qvalues(pooled.p.to_numpy())

    fits = ok.loc[ok.fit_status == "ok"]
    meta = meta_analysis(
        fits.biomarker_id.to_numpy(), fits.log_hr.to_numpy(), fits.se.to_numpy()
    )
    pooled = pooled.join(meta, how="left")
    pooled["n_sites_fit"] = pooled.n_sites_fit.fillna(0).astype(np.int64)
    nonfinite = ok.loc[ok.fit_status == "infinite", "biomarker_id"]
    pooled["n_sites_infinite"] = (
        nonfinite.value_counts().reindex(pooled.index).fillna(0)
    )
    pooled["n_sites_infinite"] = pooled.n_sites_infinite.astype(np.int64)
    if ok.sum_x.notna().any():
        # Within-site SD pooled from the sites' sums and sums of squares, the
        # scale of a per-SD hazard ratio.
        centered = ok.sum_x2 - ok.sum_x**2 / ok.n
        grouped = ok.assign(centered=centered).groupby("biomarker_id")
        with np.errstate(invalid="ignore", divide="ignore"):
            variance = grouped.centered.sum() / (grouped.n.sum() - grouped.size())
        pooled["pooled_sd"] = np.sqrt(variance.clip(lower=0.0))
        pooled["log_hr_fe_per_sd"] = pooled.log_hr_fe * pooled.pooled_sd
        pooled["log_hr_onestep_per_sd"] = pooled.log_hr_onestep * pooled.pooled_sd
    pooled = pooled.reset_index()
    return pooled.sort_values(["p", "biomarker_id"], na_position="last", kind="stable")
