"""Coordinator side of the Kaplan-Meier round.

After the first merge, :func:`write_km_request` lists the biomarkers that get
curves (the configured ones and the top hits of each kind) with their cut
points; continuous biomarkers are cut at the pooled quantile of the sites'
coarse histograms. After the sites answer, :func:`run_merge_km` sums their
counts into pooled curves and their log-rank parts into stratified tests.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from naipo_bio.bundle.read import Bundle, read_bundle
from naipo_bio.contract import (
    CARRIER_KINDS,
    CONTINUOUS_KINDS,
    HISTOGRAM_TABLE,
    KM_TABLE,
    LOGRANK_TABLE,
)
from naipo_bio.errors import ConfigError, MergeError
from naipo_bio.io.atomic import atomic_file, write_text
from naipo_bio.merge.validate import check_compatible
from naipo_bio.security.signing import verify_all
from naipo_bio.site.km import read_request, request_digest
from naipo_bio.stats.histogram import pooled_quantile
from naipo_bio.stats.km import LogRank, logrank_test, median_survival, pooled_curve

log = logging.getLogger(__name__)

KM_KINDS = ("mutation", *CONTINUOUS_KINDS)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]


def write_km_request(
    bundles: list[Bundle],
    tables: dict[str, pd.DataFrame],
    km: dict[str, Any],
    path: Path,
) -> pd.DataFrame:
    """Choose the biomarkers that get curves and their cut points."""
    chosen: dict[tuple[str, str], dict] = {}
    for group in km["groups"]:
        if (group["kind"], group["biomarker_id"]) in chosen:
            raise ConfigError(
                f"analysis.km.groups lists {group['kind']} "
                f"{group['biomarker_id']!r} twice; keep one entry (with one cut)."
            )
        chosen[(group["kind"], group["biomarker_id"])] = {
            "cut": group.get("cut"),
            "reason": "configured",
        }
    for kind in KM_KINDS:
        table = tables.get(kind)
        if table is None:
            continue
        tested = table.loc[(table.n_sites_tested > 0) & table.p.notna()]
        for biomarker in tested.head(km["top_hits"]).biomarker_id:
            chosen.setdefault((kind, biomarker), {"cut": None, "reason": "top hit"})
    with_histograms = [b for b in bundles if HISTOGRAM_TABLE in b.manifest["tables"]]
    histograms = None
    if with_histograms:
        histograms = pd.concat(
            [b.table(HISTOGRAM_TABLE) for b in with_histograms], ignore_index=True
        )
    rows = []
    for (kind, biomarker), entry in chosen.items():
        cut = entry["cut"]
        if kind not in CARRIER_KINDS and cut is None:
            if histograms is None:
                raise MergeError(
                    f"No histograms in the bundles to cut {kind} {biomarker}."
                )
            bins = histograms.loc[
                (histograms.kind == kind) & (histograms.biomarker_id == biomarker)
            ]
            cut = pooled_quantile(bins, km["quantile"])
            if not np.isfinite(cut):
                log.warning(
                    "No histogram for %s %s; it gets no curve.", kind, biomarker
                )
                continue
        label = biomarker
        table = tables.get(kind)
        if table is not None:
            match = table.loc[table.biomarker_id == biomarker, "gene"]
            if len(match) and isinstance(match.iloc[0], str) and match.iloc[0]:
                label = match.iloc[0]
        rows.append(
            {"kind": kind, "biomarker_id": biomarker, "label": label,
             "cut": np.nan if cut is None else float(cut), "reason": entry["reason"]}
        )  # fmt: skip
    request = pd.DataFrame(
        rows, columns=["kind", "biomarker_id", "label", "cut", "reason"]
    )
    with atomic_file(path) as tmp:
        request.to_csv(tmp, sep="\t", index=False, float_format="%.10g")
    return request


def run_merge_km(
    km_paths: list[str | Path],
    merge_dir: str | Path,
    request_path: str | Path,
    registry: str | Path | None = None,
    require_signatures: bool = False,
    expected_analysis: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Pool the sites' Kaplan-Meier answers into ``merge_dir/km`` (curves,
    tests, plots, summary.json) and rebuild the merge folder's report."""
    from naipo_bio.report.html import build_report
    from naipo_bio.report.plots import km_plot

    merge_dir = Path(merge_dir)
    km_dir = merge_dir / "km"
    bundles = [read_bundle(p) for p in km_paths]
    check_compatible(bundles)
    verify_all(bundles, registry, require_signatures, expected_analysis)
    digest = request_digest(request_path)
    for bundle in bundles:
        if bundle.manifest.get("round") != "km":
            raise MergeError(f"{bundle.path} is not a Kaplan-Meier bundle.")
        if bundle.manifest.get("request") != digest:
            raise MergeError(
                f"{bundle.path} answers another Kaplan-Meier request; send the sites "
                f"the current {Path(request_path).name} and collect their answers "
                "again."
            )
    request = read_request(request_path)
    width = bundles[0].manifest["analysis"]["km"]["width_days"]
    counts = pd.concat(
        [b.table(KM_TABLE).assign(site=b.site_id) for b in bundles], ignore_index=True
    )
    parts = pd.concat(
        [b.table(LOGRANK_TABLE).assign(site=b.site_id) for b in bundles],
        ignore_index=True,
    )
    curves, tests, results = [], [], []
    for row in request.itertuples(index=False):
        mine = counts.loc[
            (counts.kind == row.kind) & (counts.biomarker_id == row.biomarker_id)
        ]
        my_parts = parts.loc[
            (parts.kind == row.kind) & (parts.biomarker_id == row.biomarker_id)
        ]
        if mine.empty:
            results.append(
                {
                    "kind": row.kind,
                    "biomarker_id": row.biomarker_id,
                    "label": row.label,
                    "status": "withheld at every site",
                }
            )
            continue
        curve = pooled_curve(mine)
        curve.insert(0, "biomarker_id", row.biomarker_id)
        curve.insert(0, "kind", row.kind)
        curves.append(curve)
        logranks = [
            LogRank(list(p.groups), np.asarray(p.observed), np.asarray(p.expected),
                    np.asarray(p.covariance).reshape(len(p.groups), len(p.groups)))
            for p in my_parts.itertuples(index=False)
        ]  # fmt: skip
        chi2, df, p_value = logrank_test(logranks) if logranks else (np.nan, 0, np.nan)
        medians = median_survival(curve)
        sizes = mine.drop_duplicates(["site", "group"]).groupby("group").n.sum()
        # Events from the log-rank parts, which count every event at exact
        # times; the KM counts stop where a site's curve was truncated.
        events = (
            pd.Series(
                sum((p.observed for p in logranks), np.zeros(len(logranks[0].groups))),
                index=logranks[0].groups,
            )
            if logranks
            else pd.Series(dtype=float)
        )
        title = f"{row.kind}: {row.label}" + (
            "" if row.kind in CARRIER_KINDS else f" (cut {row.cut:.3g})"
        )
        plot = km_plot(
            curve, f"{title}\nstratified log-rank p = {p_value:.3g}",
            km_dir / "plots" / f"km.{row.kind}.{_safe_name(row.biomarker_id)}.png",
        )  # fmt: skip
        tests.append(
            {"kind": row.kind, "biomarker_id": row.biomarker_id, "label": row.label,
             "cut": row.cut, "n_sites": my_parts.site.nunique(), "chi2": chi2, "df": df,
             "p": p_value}
            | {f"n_{g}": int(sizes.get(g, 0)) for g in sizes.index}
            | {f"events_{g}": int(events.get(g, 0)) for g in events.index}
            | {f"median_days_{g}": medians.get(g, np.nan) for g in medians}
        )  # fmt: skip
        results.append(
            tests[-1] | {"status": "pooled", "plot": str(plot.relative_to(merge_dir))}
        )
    tables = km_dir / "tables"
    for name, frames in (("km_curves", curves), ("logrank", tests)):
        frame = (
            pd.concat(frames, ignore_index=True)
            if name == "km_curves" and frames
            else pd.DataFrame(frames)
        )
        with atomic_file(tables / f"{name}.tsv") as tmp:
            frame.to_csv(tmp, sep="\t", index=False, float_format="%.10g", na_rep="NA")
    summary = {
        "width_days": width,
        "sites": [b.site_id for b in bundles],
        "results": results,
        "method": (
            f"Kaplan-Meier curves pooled from each site's counts on a {width:g}-day "
            "grid (follow-up times rounded up to the grid; 95% bands from "
            "Greenwood's variance on the log(-log) scale); stratified log-rank "
            "test from each site's observed and expected events at exact times."
        ),
    }
    write_text(
        km_dir / "summary.json", json.dumps(summary, indent=2, default=float) + "\n"
    )
    build_report(merge_dir)
    return summary
