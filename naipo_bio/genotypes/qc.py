"""Per-variant quality control: call rate, allele counts and Hardy-Weinberg.

References
----------
Wigginton, J. E., Cutler, D. J. and Abecasis, G. R. (2005). A note on exact
tests of Hardy-Weinberg equilibrium. American Journal of Human Genetics 76,
887-893.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from naipo_bio.genotypes import _dosage
from naipo_bio.stats._numba import kernel

#: Terms below this fraction of the observed count's probability are dropped:
#: together they change the p-value (which is at least that probability) by
#: less than 1e-9 relative.
HWE_NEGLIGIBLE = 1e-12


@kernel
def _hwe_step_down(value, het, homr, homc):
    return value * het * (het - 1.0) / (4.0 * (homr + 1.0) * (homc + 1.0))


@kernel
def _hwe_step_up(value, het, homr, homc):
    return value * 4.0 * homr * homc / ((het + 2.0) * (het + 1.0))


@kernel
def _hwe_exact(n_het, n_hom1, n_hom2):
    """Two-sided exact HWE p-value from genotype counts (Wigginton et al. 2005).

    Probabilities of the possible heterozygote counts follow Wigginton et al.'s
    recurrence outward from the mode (relative to the mode's). The walk first
    reaches the observed count to learn its probability, then each tail stops
    where its terms fall below ``HWE_NEGLIGIBLE`` of it: the distribution is
    unimodal, so every term beyond is smaller still. A variant that fits HWE
    costs O(sqrt(n)) steps instead of O(n).
    """
    n_homr = min(n_hom1, n_hom2)
    n_homc = max(n_hom1, n_hom2)
    rare = 2 * n_homr + n_het
    n = n_het + n_homr + n_homc
    if n == 0:
        return 1.0
    mid = rare * (2 * n - rare) // (2 * n)
    if (rare & 1) ^ (mid & 1):
        mid += 1
    mid_homr = (rare - mid) // 2
    mid_homc = n - mid - mid_homr

    # The observed count's probability relative to the mode's.
    target = 1.0
    het, homr, homc = mid, mid_homr, mid_homc
    while het > n_het:
        target = _hwe_step_down(target, het, homr, homc)
        het, homr, homc = het - 2, homr + 1, homc + 1
    while het < n_het:
        target = _hwe_step_up(target, het, homr, homc)
        het, homr, homc = het + 2, homr - 1, homc - 1
    floor = target * HWE_NEGLIGIBLE

    total = 1.0
    tail = 1.0 if target >= 1.0 * (1.0 - 1e-8) else 0.0
    value = 1.0
    het, homr, homc = mid, mid_homr, mid_homc
    while het > 1:
        value = _hwe_step_down(value, het, homr, homc)
        het, homr, homc = het - 2, homr + 1, homc + 1
        total += value
        if value <= target * (1.0 + 1e-8):
            tail += value
        if value < floor and het < n_het:
            break
    value = 1.0
    het, homr, homc = mid, mid_homr, mid_homc
    while het <= rare - 2:
        value = _hwe_step_up(value, het, homr, homc)
        het, homr, homc = het + 2, homr - 1, homc - 1
        total += value
        if value <= target * (1.0 + 1e-8):
            tail += value
        if value < floor and het > n_het:
            break
    return min(1.0, tail / total)


@kernel(parallel=True)
def hwe_pvalues(hom_ref, het, hom_alt, out):
    """Exact HWE p-value of each variant from integer genotype counts."""
    for i in prange(out.shape[0]):
        out[i] = _hwe_exact(int(het[i]), int(hom_ref[i]), int(hom_alt[i]))


@dataclass(frozen=True)
class QCSettings:
    """Thresholds of the per-site variant QC (a variant failing one is not tested)."""

    min_call_rate: float = 0.95
    min_mac: float = 1.0
    min_maf: float = 0.0
    min_hwe_p: float = 1e-6


QC_REASONS = (
    "call rate below min_call_rate",
    "minor allele count below min_mac",
    "minor allele frequency below min_maf",
    "Hardy-Weinberg p below min_hwe_p",
)


def variant_qc(counts: np.ndarray, n: int, settings: QCSettings):
    """Apply QC to the counts of a block of tests.

    Returns
    -------
    stats : dict of (t,) arrays
        call_rate, ac, an, mac, maf, hwe_p.
    failed : (t,) object array
        The first QC rule each test fails, or None.
    """
    t = counts.shape[0]
    called = counts[:, _dosage.COUNT_CALLED]
    ac = counts[:, _dosage.COUNT_AC]
    an = counts[:, _dosage.COUNT_AN]
    with np.errstate(invalid="ignore", divide="ignore"):
        call_rate = called / n if n else np.zeros(t)
        mac = np.minimum(ac, an - ac)
        maf = np.where(an > 0, mac / an, 0.0)
    hwe = np.full(t, np.nan)
    # The exact test costs O(minor allele count) per variant: skip it when the
    # QC does not use it.
    if t and settings.min_hwe_p > 0:
        hwe_pvalues(
            counts[:, _dosage.COUNT_HOM_REF], counts[:, _dosage.COUNT_HET],
            counts[:, _dosage.COUNT_HOM_ALT], hwe,
        )  # fmt: skip
    failed = np.full(t, None, dtype=object)
    rules = (
        call_rate < settings.min_call_rate,
        mac < settings.min_mac,
        maf < settings.min_maf,
        np.nan_to_num(hwe, nan=1.0) < settings.min_hwe_p,
    )
    for below, reason in zip(rules, QC_REASONS, strict=True):
        failed[below & (failed == None)] = reason  # noqa: E711 (element-wise)
    stats = {
        "call_rate": call_rate,
        "ac": ac,
        "an": an,
        "mac": mac,
        "maf": maf,
        "hwe_p": hwe,
    }
    return stats, failed
