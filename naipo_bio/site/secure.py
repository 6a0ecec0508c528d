"""The site's side of secure aggregation: checks, masked table, round ledger."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from naipo_bio.config import analysis_hash
from naipo_bio.contract import SECURE_WORDS
from naipo_bio.errors import ConfigError, DisclosureError
from naipo_bio.io.atomic import write_text
from naipo_bio.security.keys import load_private, read_registry
from naipo_bio.security.secure import (
    ENCODING,
    file_digest,
    mask,
    masked_table,
    read_universe,
    site_vectors,
)

#: Site-private record of the rounds this site has masked (in its report folder).
LEDGER_NAME = "secure_rounds.json"


def check_secure_setup(site_id: str, config: dict[str, Any]) -> None:
    """Fail before any work if the site cannot take part in secure aggregation."""
    secure = config["analysis"]["secure"]
    participants = list(secure["participants"])
    if site_id not in participants:
        raise ConfigError(
            f"Site {site_id!r} is not among analysis.secure.participants "
            f"{participants}; add it there (at every site) or run in plain mode."
        )
    site = config["sites"][site_id]
    if site.get("germline"):
        raise ConfigError(
            "Secure aggregation covers mutation, expression and single-cell "
            "biomarkers, not germline variants (whose set differs between sites); "
            f"remove sites/{site_id}/germline or run the variants in plain mode."
        )
    files = site.get("secure")
    if not files:
        raise ConfigError(
            f"Secure aggregation is on, but sites/{site_id} names no secure files "
            "(universe, registry, agreement_key)."
        )
    registry = read_registry(files["registry"])
    missing = [p for p in participants if p not in registry]
    if missing:
        raise ConfigError(
            f"{files['registry']}: participants {missing} have no keys in the "
            "registry; every participant's public.yaml must be in it."
        )
    read_universe(files["universe"])
    load_private(files["agreement_key"], "agreement")


def secure_tables(
    site_id: str,
    config: dict[str, Any],
    released: dict,
    report_dir: str | Path | None,
) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    """Build the masked table of secure aggregation and the manifest's record of it."""
    analysis = config["analysis"]
    participants = list(analysis["secure"]["participants"])
    files = config["sites"][site_id]["secure"]
    universe = read_universe(files["universe"])
    registry = read_registry(files["registry"])
    key = load_private(files["agreement_key"], "agreement")
    values = site_vectors(released, universe)
    round_id = analysis["secure"]["round"]
    context = f"{analysis['id']}|{analysis_hash(analysis)}|round {round_id}"
    if report_dir is not None:
        check_round_unused(Path(report_dir) / LEDGER_NAME, context, values)
    words = mask(
        site_id, participants, registry, key, context.encode(),
        len(universe) * len(SECURE_WORDS),
    )  # fmt: skip
    record = {
        "participants": participants,
        "round": round_id,
        "universe": file_digest(files["universe"]),
        "registry": file_digest(files["registry"]),
        "encoding": ENCODING,
    }
    return {"secure": masked_table(values, universe, words)}, record


def check_round_unused(ledger: Path, context: str, values: np.ndarray) -> None:
    """Reject masking different values with masks already used.

    The same masks on two different value vectors would let anyone holding both
    bundles subtract them and see the change in this site's values. A rerun with
    identical values is harmless (the bundle is the same) and allowed.
    """
    digest = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()
    rounds = json.loads(ledger.read_text()) if ledger.exists() else {}
    previous = rounds.get(context)
    if previous is not None and previous != digest:
        raise DisclosureError(
            f"This site already released masked values for {context!r}, and its "
            "values have changed since. Masking new values with the same masks "
            "would reveal the difference. Ask the coordinator to raise "
            "analysis.secure.round for every participant, then rerun."
        )
    rounds[context] = digest
    write_text(ledger, json.dumps(rounds, indent=2) + "\n")
