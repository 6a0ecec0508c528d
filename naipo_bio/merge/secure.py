"""Merging secure-aggregation bundles: sums only, no per-site values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from naipo_bio.bundle.read import Bundle
from naipo_bio.contract import CARRIER_KINDS, SECURE_TABLE
from naipo_bio.errors import MergeError
from naipo_bio.security.secure import unmask_sum
from naipo_bio.stats.meta import bh_qvalues, two_sided_p

UNAVAILABLE_NOTE = (
    "Secure aggregation: the coordinator saw only sums over all sites, so "
    "per-site fits, fixed- and random-effects meta-analysis, heterogeneity "
    "(Cochran's Q, I2) and forest plots are unavailable; the pooled score test "
    "and the one-step estimate are exact. The pooled SD is the total SD across "
    "sites (the within-site SD needs per-site counts). Events among carriers are "
    "not shown, because a masked sum cannot tell a count a site withheld as too "
    "small from a zero."
)


def check_secure(bundles: list[Bundle]) -> list[str]:
    """Check that the secure bundles form one complete round; return participants."""
    records = [b.manifest.get("secure") for b in bundles]
    if any(r is None for r in records):
        raise MergeError(
            "Some bundles are in secure mode and some are not; all sites of one "
            "analysis must use the same mode."
        )
    participants = records[0]["participants"]
    for bundle, record in zip(bundles, records, strict=True):
        for field in ("participants", "round", "universe", "registry", "encoding"):
            if record[field] != records[0][field]:
                raise MergeError(
                    f"{bundle.path}: its secure-aggregation {field} differs from "
                    f"{bundles[0].path}'s; every site must use the same participants, "
                    "universe and registry."
                )
    present = {b.site_id for b in bundles}
    missing = [p for p in participants if p not in present]
    if missing:
        remaining = [p for p in participants if p in present]
        raise MergeError(
            f"The bundle of participant(s) {missing} is missing, so the masks do not "
            "cancel and nothing can be decoded. Either collect it, or rerun the site "
            f"stage at the remaining sites {remaining} with "
            f"analysis.secure.participants: {remaining} (the masks depend on the "
            "participant list)."
        )
    extra = sorted(present - set(participants))
    if extra:
        raise MergeError(f"Bundles of sites {extra} are not among the participants.")
    return participants


def gene_label(kind: str, biomarker_id: str) -> str | None:
    """Rebuild from the id alone the gene column the plain merge shows: the
    symbol of a SYMBOL|ENTREZ pair (empty for "?"), or the id of a mutation."""
    if "|" in biomarker_id:
        symbol = biomarker_id.split("|", 1)[0]
        return "" if symbol == "?" else symbol
    return biomarker_id if kind in CARRIER_KINDS else None


def pool_secure(bundles: list[Bundle]) -> dict[str, pd.DataFrame]:
    """Pooled association tables (one per kind) from the decoded sums."""
    totals = unmask_sum([b.table(SECURE_TABLE) for b in bundles])
    tables = {}
    for kind, rows in totals.groupby("kind", sort=True):
        pooled = pd.DataFrame(
            {
                "biomarker_id": rows.biomarker_id.to_numpy(),
                "gene": [gene_label(kind, b) for b in rows.biomarker_id],
                "n_sites_tested": np.round(rows.present).astype(np.int64).to_numpy(),
            }
        )
        for column in ("n", "n_events", "n_carriers", "n_carrier_events"):
            pooled[column] = pd.array(
                np.round(rows[column].to_numpy()).astype(np.int64), dtype="Int64"
            )
        # A site withholds carrier-event counts of 1 or 2, and a masked sum
        # cannot tell a withheld count from a zero, so the total is unknown.
        pooled["n_carrier_events"] = pd.NA
        if kind not in CARRIER_KINDS:
            pooled["n_carriers"] = pd.NA
        u = rows.u.to_numpy()
        v = rows.v.to_numpy()
        tested = v > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            pooled["u"] = u
            pooled["v"] = v
            pooled["z"] = np.where(tested, u / np.sqrt(v), np.nan)
            pooled["log_hr_onestep"] = np.where(tested, u / v, np.nan)
            pooled["se_onestep"] = np.where(tested, 1 / np.sqrt(v), np.nan)
            n = rows.n.to_numpy()
            variance = (rows.sum_x2.to_numpy() - rows.sum_x.to_numpy() ** 2 / n) / (
                n - 1
            )
        pooled["p"] = two_sided_p(pooled.z.to_numpy())
        pooled["q"] = bh_qvalues(pooled.p.to_numpy())
        if rows.sum_x2.abs().sum() > 0:
            pooled["pooled_sd"] = np.sqrt(np.clip(variance, 0, None))
            pooled["log_hr_onestep_per_sd"] = pooled.log_hr_onestep * pooled.pooled_sd
        for column in ("log_hr_fe", "se_fe", "p_fe", "log_hr_re", "se_re", "p_re",
                       "tau2", "het_q", "het_p", "i2"):  # fmt: skip
            pooled[column] = np.nan
        pooled = pooled.loc[pooled.n_sites_tested > 0]
        tables[kind] = pooled.sort_values(["p", "biomarker_id"], na_position="last")
    return tables
