"""Checks that a set of bundles belongs to one analysis and can be pooled."""

from __future__ import annotations

from collections import Counter

from naipo_bio.bundle.read import Bundle
from naipo_bio.errors import MergeError

#: Manifest fields every bundle of one analysis must share, with the fix to
#: suggest when they differ.
SHARED_FIELDS = {
    "analysis_id": "Merge only bundles of one analysis.",
    "config_hash": (
        "The sites ran with different analysis settings; every site must run with "
        "the consortium's analysis section unchanged."
    ),
    "ties": "Every site must use the same tie method (analysis.ties).",
    "time_unit": "Every bundle must give times in days.",
    "genome_build": "Bundles of different genome builds cannot be merged; lift over.",
}


def check_compatible(bundles: list[Bundle]) -> None:
    """Raise MergeError unless the bundles form one poolable analysis."""
    if not bundles:
        raise MergeError("No bundles to merge.")
    sites = Counter(b.site_id for b in bundles)
    repeated = sorted(site for site, count in sites.items() if count > 1)
    if repeated:
        paths = [str(b.path) for b in bundles if b.site_id in repeated]
        raise MergeError(
            f"Site id(s) {repeated} occur in more than one bundle ({paths}). Each "
            "site may contribute one bundle; remove the duplicate."
        )
    for name, fix in SHARED_FIELDS.items():
        values = {b.site_id: b.manifest.get(name) for b in bundles}
        if len(set(map(str, values.values()))) > 1:
            listing = ", ".join(f"{site}: {value}" for site, value in values.items())
            raise MergeError(f"The bundles disagree on {name} ({listing}). {fix}")
    versions = {str(b.manifest["schema_version"]).split(".")[0] for b in bundles}
    if len(versions) > 1:
        raise MergeError(
            "The bundles have different schema major versions; rerun the older sites "
            "with the consortium's naipo-bio version."
        )
