"""The disclosure policy: what a site may release.

Rules, applied per biomarker (of any status) in this order:

1. a biomarker with fewer than ``min_events`` events, or (binary kinds) fewer
   than ``min_carriers`` carriers or ``min_noncarriers`` non-carriers, is
   withheld: only its id, the status ``suppressed`` and the rule that withheld
   it are released. The same happens when fewer than ``min_carriers`` patients
   differ from the biomarker's most common value (an expression gene measured
   as 0 in all patients but two, for example), because sums over the patients
   would then reveal those few values;
2. in every released row, a patient count between 1 and ``min_cell - 1`` is
   withheld (released as null).

Reasons name the threshold, never the count that fell below it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from naipo_bio.contract import (
    CARRIER_KINDS,
    COUNT_COLUMNS,
    STATUS_SUPPRESSED,
)
from naipo_bio.errors import DisclosureError
from naipo_bio.site.statistics import INFORMATIVE

VALUE_COLUMNS = ("u", "v", "log_hr", "se", "sum_x", "sum_x2")


def check_site(n_patients: int, n_events: int, policy: dict[str, Any], site: str):
    """Refuse any release for a site below the minimum patients or events."""
    if n_patients < policy["min_site_patients"]:
        raise DisclosureError(
            f"Site {site!r} has {n_patients} analysed patients, below the disclosure "
            f"policy's min_site_patients = {policy['min_site_patients']}. No bundle "
            "is written. Check the join report for patients lost in the join."
        )
    if n_events < policy["min_site_events"]:
        raise DisclosureError(
            f"Site {site!r} has {n_events} events, below the disclosure policy's "
            f"min_site_events = {policy['min_site_events']}. No bundle is written."
        )


def apply_policy(
    table: pd.DataFrame, kind: str, policy: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return the releasable table and a summary of what was withheld."""
    table = table.copy()
    # Every row is checked, whatever its status: a row that cannot be tested
    # (no events, constant) still carries counts and sums over its patients.
    ok = (table["status"] != STATUS_SUPPRESSED).to_numpy()
    reasons = np.full(len(table), None, dtype=object)

    n = table["n"].to_numpy()
    events = table["n_events"].to_numpy()
    rules = [
        (events < policy["min_events"], f"fewer than {policy['min_events']} events")
    ]
    if kind in CARRIER_KINDS:
        carriers = table["n_carriers"].to_numpy(dtype=np.int64)
        rules.append(
            (carriers < policy["min_carriers"],
             f"fewer than {policy['min_carriers']} carriers")
        )  # fmt: skip
        rules.append(
            (n - carriers < policy["min_noncarriers"],
             f"fewer than {policy['min_noncarriers']} non-carriers")
        )  # fmt: skip
    informative = table[INFORMATIVE].to_numpy()
    rules.append(
        (informative < policy["min_carriers"],
         f"fewer than {policy['min_carriers']} patients differ from the most "
         "common value")
    )  # fmt: skip
    for below, text in rules:
        hit = ok & below & (reasons == None)  # noqa: E711 (element-wise)
        reasons[hit] = text

    withheld = reasons != None  # noqa: E711
    table.loc[withheld, "status"] = STATUS_SUPPRESSED
    table.loc[withheld, "reason"] = reasons[withheld]
    for column in VALUE_COLUMNS:
        table.loc[withheld, column] = np.nan
    table.loc[withheld, "fit_status"] = "not_fitted"
    for column in COUNT_COLUMNS:
        table[column] = table[column].astype("Int64")
        table.loc[withheld, column] = pd.NA

    cells = 0
    for column in COUNT_COLUMNS:
        values = table[column]
        small = values.notna() & (values > 0) & (values < policy["min_cell"])
        cells += int(small.sum())
        table.loc[small, column] = pd.NA

    table = table.drop(columns=[INFORMATIVE])
    summary = {
        "biomarkers": int(len(table)),
        "released": int((table["status"] != STATUS_SUPPRESSED).sum()),
        "suppressed": dict(Counter(reasons[withheld].tolist())),
        "count_cells_withheld": cells,
    }
    return table, summary


def apply_variant_policy(
    variants: pd.DataFrame | None, blocks: pd.DataFrame, policy: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Return the releasable variant rows and gene blocks, and what was withheld.

    A variant with 1 to ``min_carriers - 1`` carriers, or fewer than
    ``min_noncarriers`` non-carriers, is left out of the variant table entirely:
    even its position and alleles would tell that a patient at this site carries
    it. Only the number of such rows is released. A gene block is released when
    ``release_gene_blocks`` is set and its variants together have at least
    ``min_carriers`` carriers.
    """
    from naipo_bio.site.variants import empty_variant_frame

    if variants is None:
        variants = empty_variant_frame()
    carriers = variants["n_carriers"].to_numpy(dtype=np.float64)
    called = variants["n"].to_numpy(dtype=np.float64)
    rare = (carriers > 0) & (carriers < policy["min_carriers"])
    common = (called - carriers < policy["min_noncarriers"]) & (carriers > 0)
    withheld = rare | common
    suppressed = {}
    if rare.any():
        suppressed[f"fewer than {policy['min_carriers']} carriers"] = int(rare.sum())
    if (common & ~rare).any():
        key = f"fewer than {policy['min_noncarriers']} non-carriers"
        suppressed[key] = int((common & ~rare).sum())
    released = variants.loc[~withheld].reset_index(drop=True)
    cells = 0
    for column in ("n_carriers", "ac"):
        values = released[column]
        small = values.notna() & (values > 0) & (values < policy["min_cell"])
        cells += int(small.sum())
        released.loc[small, column] = np.nan if column == "ac" else pd.NA

    blocks_out = blocks
    withheld_blocks = 0
    if len(blocks):
        allowed = policy["release_gene_blocks"] & (
            blocks["n_carriers"] >= policy["min_carriers"]
        )
        withheld_blocks = int((~allowed).sum())
        blocks_out = blocks.loc[allowed].reset_index(drop=True)
    summary = {
        "tests": int(len(variants)),
        "released": int(len(released)),
        "suppressed": suppressed,
        "count_cells_withheld": cells,
        "gene_blocks": int(len(blocks_out)),
        "gene_blocks_withheld": withheld_blocks,
    }
    return released, blocks_out, summary
