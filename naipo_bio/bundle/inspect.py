"""A plain-language listing of what a bundle would release, for sign-off."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pyarrow.parquet as pq

from naipo_bio.bundle.read import read_bundle
from naipo_bio.contract import KINDS, MANIFEST_NAME, SIGNATURE_NAME

#: Plain-language meaning of one row of each table, for a reader outside the project.
TABLE_MEANING = {
    "association": (
        "one row per biomarker: its id, whether it was tested, patient and event "
        "counts (counts of 1 or 2 are withheld), the score U and information V of "
        "the site's Cox model, the site's log hazard ratio and its standard error, "
        "and for continuous biomarkers the sum and sum of squares over patients"
    ),
    "variant": (
        "one row per genetic variant: position and alleles, number of patients "
        "with a call, call rate, allele counts, carrier count, Hardy-Weinberg "
        "p-value, score U and information V; variants carried by fewer than the "
        "minimum number of patients are not listed at all"
    ),
    "gene_block": (
        "one row per gene: the variants of the gene with their allele counts, "
        "scores and the covariance of the scores; released only for genes whose "
        "variants together have at least the minimum number of carriers"
    ),
    "histogram": (
        "one row per bin: how many patients have a continuous biomarker value in "
        "a range; neighbouring bins are merged until each holds at least the "
        "minimum cell count"
    ),
    "km": (
        "one row per group and time interval: events and censorings on a coarse "
        "time grid; no exact time, and each group's rows stop before fewer than "
        "the minimum number of patients remain at risk"
    ),
    "logrank": (
        "one row per biomarker: per group the observed and expected number of "
        "events and their covariance (sums over the site's patients)"
    ),
    "secure": (
        "one row per biomarker of the consortium's list: sums masked with keys "
        "shared with every other participant; each number alone is random and "
        "only the sum over all participants means anything"
    ),
}


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=76, initial_indent="  ", subsequent_indent="  ")


def describe(bundle_path: str | Path) -> str:
    """Describe the bundle in plain text, verifying every checksum while reading."""
    bundle = read_bundle(bundle_path)
    m = bundle.manifest
    policy = m["disclosure"]["policy"]
    lines = [
        f"Release listing of {Path(bundle_path).name}",
        "=" * 60,
        f"Site: {m['site_id']}    Analysis: {m['analysis_id']}",
        f"Mode: {m.get('mode', 'plain')}"
        + (f"    Round: {m['round']}" if m.get("round") else ""),
        f"Created: {m['created']} by naipo-bio {m['software'].get('naipo-bio')}",
        f"Analysis settings hash: {m['config_hash']}",
        f"Patients analysed: {m['counts']['patients']}, "
        f"events: {m['counts']['events']}",
        "",
        "What leaves the site",
        "-" * 60,
        "Only the files below. They hold no patient identifier, no sample name, no",
        "date or follow-up time of a patient, and no value of a single patient.",
        "",
    ]
    for name, entry in sorted(m["tables"].items()):
        meaning = TABLE_MEANING["association" if name in KINDS else name]
        schema = pq.read_schema(bundle.path / entry["file"])
        lines.append(f"* {entry['file']}: {entry['rows']} rows ({name})")
        lines.append(_wrap(f"{meaning}."))
        lines.append(_wrap(f"Columns: {', '.join(schema.names)}"))
        lines.append(f"  SHA-256: {entry['sha256']}")
    lines.append(f"* {MANIFEST_NAME}: this description in machine-readable form")
    if (bundle.path / SIGNATURE_NAME).exists():
        lines.append(
            f"* {SIGNATURE_NAME}: the site's Ed25519 signature of the manifest"
        )
    else:
        lines.append("  (not signed)")
    lines += ["", "Disclosure policy in force", "-" * 60]
    for key, value in sorted(policy.items()):
        lines.append(f"  {key}: {value}")
    lines += ["", "What was withheld and why", "-" * 60]
    summaries = m["disclosure"].get("summary", {})
    if not summaries:
        lines.append("  nothing")
    for kind, summary in sorted(summaries.items()):
        suppressed = summary.get("suppressed") or {}
        total = sum(suppressed.values())
        lines.append(
            f"  {kind}: {total} withheld"
            + (f" of {summary['biomarkers']}" if "biomarkers" in summary else "")
        )
        for reason, count in sorted(suppressed.items()):
            lines.append(f"    {count}: {reason}")
        if summary.get("count_cells_withheld"):
            lines.append(
                f"    {summary['count_cells_withheld']} small counts withheld "
                "(released as empty)"
            )
        if "gene_blocks_withheld" in summary:
            lines.append(f"    {summary['gene_blocks_withheld']} gene blocks withheld")
    if m.get("checks"):
        lines += ["", "Checks", "-" * 60, f"  {json.dumps(m['checks'])}"]
    if m.get("secure"):
        record = m["secure"]
        lines += [
            "",
            "Secure aggregation",
            "-" * 60,
            f"  participants: {', '.join(record['participants'])}",
            f"  universe: {record['universe']}",
            f"  key registry: {record['registry']}",
        ]
    return "\n".join(lines) + "\n"
