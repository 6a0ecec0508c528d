"""Second round at a site: Kaplan-Meier counts and log-rank parts on request.

The coordinator's request lists biomarkers (kind, id) and, for continuous
ones, the cut point between "low" and "high". Binary biomarkers split into
"wild type" and "mutated". A biomarker is withheld when one of its groups has
fewer than ``min_carriers`` patients or fewer than ``min_events`` events remain,
because a curve of so few patients would show their survival.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from naipo_bio.config import analysis_hash
from naipo_bio.contract import (
    CARRIER_KINDS,
    KINDS,
    KM_SCHEMA,
    KM_TABLE,
    LOGRANK_SCHEMA,
    LOGRANK_TABLE,
    TIME_UNIT,
)
from naipo_bio.errors import ConfigError, InputError
from naipo_bio.site.prepare import prepare_site
from naipo_bio.site.run import finish_bundle, modality_values
from naipo_bio.stats.km import km_counts, logrank_parts, truncate_at_risk

log = logging.getLogger(__name__)

REQUEST_COLUMNS = ("kind", "biomarker_id", "label", "cut", "reason")
BINARY_GROUPS = ("wild type", "mutated")
CONTINUOUS_GROUPS = ("low", "high")


def read_request(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(f"The Kaplan-Meier request was not found: {path}")
    frame = pd.read_csv(path, sep="\t", dtype={"biomarker_id": str, "kind": str})
    missing = set(REQUEST_COLUMNS) - set(frame.columns)
    if missing:
        raise InputError(f"{path}: the request lacks columns {sorted(missing)}.")
    fix = "Ask the coordinator for the request the merge wrote, unedited."
    unknown = sorted(set(frame["kind"].dropna()) - set(KINDS))
    if unknown or frame["kind"].isna().any():
        raise InputError(
            f"{path}: unknown biomarker kind(s) {unknown or ['(empty)']}; known "
            f"kinds are {sorted(KINDS)}. {fix}"
        )
    cut = pd.to_numeric(frame["cut"], errors="coerce")
    continuous = ~frame["kind"].isin(CARRIER_KINDS)
    bad = continuous & ~np.isfinite(cut.to_numpy(dtype=np.float64))
    if bad.any():
        row = frame.loc[bad].iloc[0]
        raise InputError(
            f"{path}: line {int(np.flatnonzero(bad)[0]) + 2}: the cut of "
            f"{row['kind']} {row['biomarker_id']!r} is {row['cut']!r}, not a finite "
            f"number. {fix}"
        )
    repeated = frame.duplicated(["kind", "biomarker_id"], keep=False)
    if repeated.any():
        row = frame.loc[repeated].iloc[0]
        raise InputError(
            f"{path}: {row['kind']} {row['biomarker_id']!r} is requested more than "
            f"once; each biomarker may appear once. {fix}"
        )
    frame["cut"] = cut
    return frame


def request_digest(path: str | Path) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def groups_of(kind: str, values: np.ndarray, cut: float) -> tuple[np.ndarray, tuple]:
    """Group label of each patient (None where the value is missing)."""
    present = np.isfinite(values)
    if kind in CARRIER_KINDS:
        labels = np.where(values > 0, BINARY_GROUPS[1], BINARY_GROUPS[0])
        order = BINARY_GROUPS
    else:
        labels = np.where(values >= cut, CONTINUOUS_GROUPS[1], CONTINUOUS_GROUPS[0])
        order = CONTINUOUS_GROUPS
    return np.where(present, labels, None), order


def km_tables(prepared, config: dict[str, Any], request: pd.DataFrame):
    """KM counts, log-rank parts and the reasons biomarkers were withheld."""
    analysis = config["analysis"]
    policy = analysis["disclosure"]
    width = analysis["km"]["width_days"]
    if width < policy["km_min_width_days"]:
        raise ConfigError(
            f"The Kaplan-Meier request asks for a {width}-day time grid, finer than "
            f"this site's disclosure policy allows (km_min_width_days = "
            f"{policy['km_min_width_days']}). Ask the coordinator to rerun the round "
            "with analysis.km.width_days of at least that."
        )
    clinical = prepared.analysed
    km_rows, logrank_rows = [], []
    withheld: dict[str, int] = {}
    values_by_kind = {}
    for row in request.itertuples(index=False):
        if row.kind not in prepared.modalities:
            withheld["kind not measured at this site"] = (
                withheld.get("kind not measured at this site", 0) + 1
            )
            continue
        if row.kind not in values_by_kind:
            modality = prepared.modalities[row.kind]
            values_by_kind[row.kind] = (
                {b: i for i, b in enumerate(modality.ids)},
                modality_values(prepared, row.kind),
            )
        index, values = values_by_kind[row.kind]
        if row.biomarker_id not in index:
            withheld["biomarker absent at this site"] = (
                withheld.get("biomarker absent at this site", 0) + 1
            )
            continue
        group, order = groups_of(row.kind, values[index[row.biomarker_id]], row.cut)
        keep = group != None  # noqa: E711 (element-wise)
        sizes = pd.Series(group[keep]).value_counts()
        events = int(clinical.event[keep].sum())
        small = [g for g in order if sizes.get(g, 0) < policy["min_carriers"]]
        if small or events < policy["min_events"]:
            reason = (
                f"a group with fewer than {policy['min_carriers']} patients"
                if small else f"fewer than {policy['min_events']} events"
            )  # fmt: skip
            withheld[reason] = withheld.get(reason, 0) + 1
            continue
        counts = km_counts(
            clinical.time_days[keep], clinical.event[keep], group[keep], width
        )
        counts = truncate_at_risk(counts, policy["km_min_at_risk"])
        counts.insert(0, "biomarker_id", row.biomarker_id)
        counts.insert(0, "kind", row.kind)
        km_rows.append(counts)
        strata = None if clinical.strata is None else clinical.strata[keep]
        parts = logrank_parts(
            clinical.time_days[keep],
            clinical.event[keep],
            group[keep],
            list(order),
            strata,
        )
        logrank_rows.append(
            {
                "kind": row.kind,
                "biomarker_id": row.biomarker_id,
                "groups": list(order),
                "observed": parts.observed.tolist(),
                "expected": parts.expected.tolist(),
                "covariance": parts.covariance.ravel().tolist(),
            }
        )
    km = (
        pd.concat(km_rows, ignore_index=True)
        if km_rows
        else pd.DataFrame(columns=KM_SCHEMA.names)
    )
    km = km[list(KM_SCHEMA.names)]
    logrank = pd.DataFrame(logrank_rows, columns=LOGRANK_SCHEMA.names)
    return km, logrank, withheld


def run_site_km(
    site_id: str, config: dict[str, Any], request_path: str | Path, out_path: str | Path
) -> Path:
    """Answer the coordinator's Kaplan-Meier request with a second bundle."""
    analysis = config["analysis"]
    prepared = prepare_site(site_id, config)
    request = read_request(request_path)
    km, logrank, withheld = km_tables(prepared, config, request)
    log.info(
        "Kaplan-Meier request: %d biomarkers, %d answered, withheld %s",
        len(request), len(logrank), withheld or "none",
    )  # fmt: skip
    tables = {
        KM_TABLE: pa.Table.from_pandas(km, schema=KM_SCHEMA, preserve_index=False),
        LOGRANK_TABLE: pa.Table.from_pandas(
            logrank, schema=LOGRANK_SCHEMA, preserve_index=False
        ),
    }
    manifest = {
        "site_id": site_id,
        "round": "km",
        "request": request_digest(request_path),
        "analysis_id": analysis["id"],
        "config_hash": analysis_hash(analysis),
        "analysis": analysis,
        "ties": analysis["ties"],
        "time_unit": TIME_UNIT,
        "genome_build": analysis["genome_build"],
        "counts": {
            "patients": len(prepared.analysed.patient_ids),
            "events": prepared.n_events,
        },
        "disclosure": {
            "policy": analysis["disclosure"],
            "summary": {
                KM_TABLE: {
                    "requested": len(request),
                    "answered": len(logrank),
                    "suppressed": withheld,
                }
            },
        },  # fmt: skip
    }
    return finish_bundle(out_path, manifest, tables, config["sites"][site_id])
