"""Matching variants across sites that describe them differently.

Variants are grouped on (contig, position, allele pair). Contig names are
already canonical (``1``, ``X``, ``MT``). The pair is unordered, so a site that
swapped REF and ALT joins the group, and for SNVs that are not A/T or C/G the
complementary pair joins it too, so a site reporting the opposite strand
matches. Within a group every site's row is expressed against one target
orientation: a reference-sites file's REF/ALT when given, otherwise the first
site's. A swapped row contributes -U and AN - AC.

A/T and C/G SNVs (palindromic) cannot be strand-checked from the alleles. They
are matched as written, since VCF records are on the forward strand, and are
flagged; the merge drops them when the pooled MAF exceeds ``ambiguous_max_maf``
because then not even the allele frequency can reveal a strand error.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

from naipo_bio.errors import InputError
from naipo_bio.io.genome import canonical_contig

COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")
BASES = set("ACGT")
COMPLEMENT_BASE = {"A": "T", "C": "G", "G": "C", "T": "A"}
PALINDROMES = {"AT", "TA", "CG", "GC"}


def is_snv(ref: str, alt: str) -> bool:
    return len(ref) == 1 and len(alt) == 1 and ref in BASES and alt in BASES


def is_palindromic(ref: str, alt: str) -> bool:
    return is_snv(ref, alt) and ref.translate(COMPLEMENT) == alt


def pair_key(ref: str, alt: str) -> str:
    """Strand- and order-independent key of an allele pair."""
    pair = "/".join(sorted((ref, alt)))
    if is_snv(ref, alt) and not is_palindromic(ref, alt):
        flipped = "/".join(
            sorted((ref.translate(COMPLEMENT), alt.translate(COMPLEMENT)))
        )
        pair = min(pair, flipped)
    return pair


def orient(ref: str, alt: str, target_ref: str, target_alt: str) -> tuple[int, bool]:
    """Sign (+1 same ALT, -1 swapped, 0 no match) and whether the strand flipped."""
    if (ref, alt) == (target_ref, target_alt):
        return 1, False
    if (alt, ref) == (target_ref, target_alt):
        return -1, False
    if is_snv(ref, alt) and not is_palindromic(ref, alt):
        c_ref, c_alt = ref.translate(COMPLEMENT), alt.translate(COMPLEMENT)
        if (c_ref, c_alt) == (target_ref, target_alt):
            return 1, True
        if (c_alt, c_ref) == (target_ref, target_alt):
            return -1, True
    return 0, False


#: Pair key of every SNV written as REF + ALT, as pair_key computes it.
SNV_KEYS: dict[str, str] = {}


def read_reference_sites(
    path: str | Path,
) -> dict[tuple[str, int, str], tuple[str, str]]:
    """(contig, pos, pair key) -> (REF, ALT) from a VCF or a TSV with columns
    chrom, pos, ref, alt (a header line is allowed)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"The reference sites file was not found: {path}")
    opener = gzip.open if path.suffix in (".gz", ".bgz") else open
    sites: dict[tuple[str, int, str], tuple[str, str]] = {}
    with opener(path, "rt") as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            is_vcf = len(fields) >= 5 and not fields[1].isalpha()
            try:
                if is_vcf and len(fields) >= 8:
                    contig, pos, ref, alts = (
                        fields[0],
                        int(fields[1]),
                        fields[3],
                        fields[4],
                    )
                else:
                    contig, pos, ref, alts = (
                        fields[0],
                        int(fields[1]),
                        fields[2],
                        fields[3],
                    )
            except (IndexError, ValueError):
                if number == 1:
                    continue  # a header line of a TSV
                raise InputError(
                    f"{path}: line {number} is neither 'chrom pos ref alt' nor a VCF "
                    "record."
                ) from None
            for alt in alts.split(","):
                key = (canonical_contig(contig), pos, pair_key(ref, alt))
                sites[key] = (ref, alt)
    return sites


def harmonize(
    rows: pd.DataFrame,
    reference: dict[tuple[str, int, str], tuple[str, str]] | None,
    site_order: dict[str, int],
) -> pd.DataFrame:
    """Add group keys, target alleles, sign and strand-flip columns to site rows.

    ``rows`` has columns site, contig, pos, ref, alt. The result adds ``pair``,
    ``target_ref``, ``target_alt``, ``sign``, ``strand_flipped``,
    ``in_reference`` and ``palindromic``. Vectorized: SNV pairs go through a
    16-entry lookup, other alleles through element-wise string comparison.
    """
    rows = rows.copy()
    ref = rows.ref.to_numpy(dtype=object)
    alt = rows.alt.to_numpy(dtype=object)
    joined = pd.Series(ref + alt, index=rows.index)
    snv = joined.isin(SNV_KEYS).to_numpy()
    ordered = np.where(ref <= alt, ref + "/" + alt, alt + "/" + ref)
    rows["pair"] = np.where(snv, joined.map(SNV_KEYS).to_numpy(), ordered)
    rows["site_rank"] = rows.site.map(site_order)
    rows = rows.sort_values(["contig", "pos", "pair", "site_rank"], kind="stable")
    first = rows.groupby(["contig", "pos", "pair"], sort=False)[
        ["ref", "alt"]
    ].transform("first")
    target_ref = first.ref.to_numpy(dtype=object)
    target_alt = first.alt.to_numpy(dtype=object)
    in_reference = np.zeros(len(rows), dtype=bool)
    if reference is not None:
        keys = zip(rows.contig, rows.pos, rows.pair, strict=True)
        for i, key in enumerate(keys):
            hit = reference.get((key[0], int(key[1]), key[2]))
            if hit is not None:
                target_ref[i], target_alt[i] = hit
                in_reference[i] = True
    ref = rows.ref.to_numpy(dtype=object)
    alt = rows.alt.to_numpy(dtype=object)
    snv = pd.Series(ref + alt).isin(SNV_KEYS).to_numpy()
    palindromic_row = snv & (pd.Series(ref + alt).isin(PALINDROMES).to_numpy())
    same = (ref == target_ref) & (alt == target_alt)
    swapped = (alt == target_ref) & (ref == target_alt)
    complement_ref = pd.Series(ref).map(COMPLEMENT_BASE).to_numpy(dtype=object)
    complement_alt = pd.Series(alt).map(COMPLEMENT_BASE).to_numpy(dtype=object)
    strand = snv & ~palindromic_row
    flipped_same = (
        strand & (complement_ref == target_ref) & (complement_alt == target_alt)
    )
    flipped_swap = (
        strand & (complement_alt == target_ref) & (complement_ref == target_alt)
    )
    rows["sign"] = np.select(
        [same, swapped, flipped_same & ~same, flipped_swap & ~swapped],
        [1, -1, 1, -1],
        0,
    )
    rows["strand_flipped"] = ~same & ~swapped & (flipped_same | flipped_swap)
    rows["target_ref"] = target_ref
    rows["target_alt"] = target_alt
    rows["in_reference"] = in_reference
    target = pd.Series(target_ref + target_alt)
    rows["palindromic"] = target.isin(PALINDROMES).to_numpy()
    return rows.drop(columns="site_rank")


SNV_KEYS.update({a + b: pair_key(a, b) for a in "ACGT" for b in "ACGT" if a != b})
