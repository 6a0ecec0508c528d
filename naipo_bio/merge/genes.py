"""Pooling gene blocks across sites and running burden, SKAT and SKAT-O.

Each site sends, per gene, the scores and covariance of its variants. The
coordinator aligns every site's variants to one orientation (a swapped variant
flips the sign of its score and of its covariances), sums the blocks over
sites, selects the variants whose pooled MAF is at most ``rare_maf``, and tests
the gene. A variant absent at a site contributes nothing there.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from naipo_bio.bundle.read import Bundle
from naipo_bio.contract import GENE_BLOCK_TABLE, VARIANT_TABLE
from naipo_bio.merge.harmonize import orient, pair_key
from naipo_bio.stats.genetests import beta_weights, gene_tests
from naipo_bio.stats.meta import bh_qvalues

log = logging.getLogger(__name__)


def _upper_to_full(values: list[float], k: int) -> np.ndarray:
    full = np.zeros((k, k))
    rows, cols = np.triu_indices(k)
    full[rows, cols] = values
    full[cols, rows] = values
    return full


def pool_gene_blocks(
    bundles: list[Bundle], rare_maf: float, reference: dict | None = None
) -> pd.DataFrame | None:
    """One row per gene: variants used, pooled MAC, and the three tests."""
    per_gene: dict[str, list[tuple[str, dict]]] = {}
    absent: dict[str, list[str]] = {}
    with_blocks = 0
    for bundle in bundles:
        summary = bundle.manifest["disclosure"]["summary"].get(VARIANT_TABLE, {})
        for name in summary.get("regions_on_absent_contigs", []):
            absent.setdefault(name, []).append(bundle.site_id)
        if GENE_BLOCK_TABLE not in bundle.manifest["tables"]:
            continue
        with_blocks += 1
        for row in bundle.table(GENE_BLOCK_TABLE).to_dict("records"):
            per_gene.setdefault(row["gene"], []).append((bundle.site_id, row))
    if not with_blocks:
        return None
    results = []
    for gene in sorted(per_gene):
        row = _pool_gene(gene, per_gene[gene], rare_maf, reference)
        row["status"] = "tested" if row["n_variants_tested"] else "no rare variants"
        row["sites_contig_absent"] = ",".join(absent.get(gene, []))
        results.append(row)
    everywhere = [
        g for g, s in absent.items() if len(s) == with_blocks and g not in per_gene
    ]
    for gene in sorted(everywhere):
        results.append(
            {"gene": gene, "status": "contig absent at every site", "n_sites": 0,
             "sites_contig_absent": ",".join(absent[gene])}
        )  # fmt: skip
    table = pd.DataFrame(results)
    for column in ("burden_p", "skat_p", "skato_p"):
        table[column.removesuffix("_p") + "_q"] = bh_qvalues(table[column].to_numpy())
    return table.sort_values("skato_p", na_position="last", kind="stable")


def _pool_gene(gene, blocks, rare_maf, reference) -> dict:
    # Target orientation of each variant: the reference's, else the first site's.
    targets: dict[tuple, tuple[str, str]] = {}
    consequences: dict[tuple, str] = {}
    for _, block in blocks:
        for key, consequence in zip(
            block["variants"], block["consequences"], strict=True
        ):
            contig, pos, ref, alt = key.split(":")
            group = (contig, int(pos), pair_key(ref, alt))
            if group not in targets:
                hit = reference.get(group) if reference else None
                targets[group] = hit if hit is not None else (ref, alt)
                consequences[group] = consequence
    order = list(targets)
    index = {group: i for i, group in enumerate(order)}
    k = len(order)
    U = np.zeros(k)
    V = np.zeros((k, k))
    ac = np.zeros(k)
    an = np.zeros(k)
    sites = []
    for site, block in blocks:
        sites.append(site)
        keys = block["variants"]
        positions = np.empty(len(keys), dtype=np.int64)
        signs = np.empty(len(keys))
        for j, key in enumerate(keys):
            contig, pos, ref, alt = key.split(":")
            group = (contig, int(pos), pair_key(ref, alt))
            positions[j] = index[group]
            signs[j], _ = orient(ref, alt, *targets[group])
        block_cov = _upper_to_full(block["cov"], len(keys))
        U[positions] += signs * np.asarray(block["u"])
        V[np.ix_(positions, positions)] += block_cov * np.outer(signs, signs)
        site_ac = np.asarray(block["ac"])
        site_an = np.asarray(block["an"])
        ac[positions] += np.where(signs > 0, site_ac, site_an - site_ac)
        an[positions] += site_an
    with np.errstate(invalid="ignore", divide="ignore"):
        af = np.where(an > 0, ac / an, 0.0)
    maf = np.minimum(af, 1 - af)
    keep = (maf > 0) & (maf <= rare_maf) & (np.diag(V) > 0)
    row = {
        "gene": gene,
        "n_sites": len(sites),
        "sites": ",".join(sites),
        "n_variants_sent": k,
        "n_variants_tested": int(keep.sum()),
        "pooled_mac": float(np.sum(np.minimum(ac, an - ac)[keep])),
        "variants": ",".join(
            f"{order[i][0]}:{order[i][1]}:{targets[order[i]][0]}:{targets[order[i]][1]}"
            for i in np.flatnonzero(keep)
        ),
    }
    if keep.sum() == 0:
        return row | dict.fromkeys(
            ("burden_stat", "burden_p", "skat_stat", "skat_p", "skato_p", "skato_rho"),
            np.nan,
        )
    result = gene_tests(U[keep], V[np.ix_(keep, keep)], beta_weights(maf[keep]))
    return row | {
        "burden_stat": result.burden_stat,
        "burden_p": result.burden_p,
        "skat_stat": result.skat_stat,
        "skat_p": result.skat_p,
        "skato_p": result.skato_p,
        "skato_rho": result.skato_rho,
    }
