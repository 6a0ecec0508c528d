"""Contig names and genome builds.

One alias rule serves every reader and the merge: a contig name is reduced to its
canonical form by dropping a leading ``chr`` (any case), and ``M``/``chrM`` become
``MT``. Builds are checked against the primary-assembly contig lengths in
``data/contigs.tsv``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib import resources

from naipo_bio.errors import InputError

log = logging.getLogger(__name__)

BUILDS = ("GRCh37", "GRCh38")


def canonical_contig(name: str) -> str:
    """Canonical contig name: ``chr1`` -> ``1``, ``chrM``/``M`` -> ``MT``."""
    stripped = name[3:] if name[:3].lower() == "chr" else name
    if stripped.upper() in ("M", "MT"):
        return "MT"
    if stripped.upper() in ("X", "Y"):
        return stripped.upper()
    return stripped


@lru_cache(maxsize=1)
def contig_lengths() -> dict[str, dict[str, int]]:
    """Build -> canonical contig -> length."""
    text = resources.files("naipo_bio.data").joinpath("contigs.tsv").read_text()
    table: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or line.startswith("build\t"):
            continue
        build, contig, length = line.split("\t")
        table.setdefault(build, {})[contig] = int(length)
    return table


def check_build(
    header_contigs: dict[str, int | None], build: str | None, path: str
) -> dict[str, str]:
    """Check header contig lengths against ``build``; map header names to canonical.

    Raises
    ------
    InputError
        If a primary contig's length differs from the declared build, naming the
        contig, the header's length and the build's length.
    """
    mapping = {name: canonical_contig(name) for name in header_contigs}
    if build is None:
        return mapping
    expected = contig_lengths()[build]
    checked = 0
    for name, length in header_contigs.items():
        canonical = mapping[name]
        if canonical not in expected or length is None:
            continue
        checked += 1
        if length != expected[canonical]:
            other = [b for b in BUILDS if b != build][0]
            hint = ""
            if contig_lengths()[other].get(canonical) == length:
                hint = f" That is the {other} length: the file looks like {other}."
            raise InputError(
                f"{path}: contig {name!r} has length {length:,} in the header, but "
                f"{build} (the configured genome_build) has {expected[canonical]:,}."
                f"{hint} Declare the right build, or lift the file over to {build}."
            )
    if checked == 0:
        log.warning(
            "%s: the header has no contig lengths of %s's primary chromosomes, so the "
            "genome build could not be checked.", path, build,
        )  # fmt: skip
    return mapping
