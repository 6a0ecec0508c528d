"""numba kernel: per-ALT dosages and allele counts from decoded records.

Rules (documented for users in docs/genotypes.md):

- dosage of ALT k = number of alleles equal to k; phased and unphased calls are
  alike;
- a haploid call (one allele) has dosage ``haploid_alt`` x (allele == k), with
  ``haploid_alt`` 1 or 2;
- a half-missing call ("./1") is missing under the default policy; under the
  carrier policy it is 1 when the observed allele is k and missing otherwise;
- in records split from one multi-allelic record, "." can stand for another
  ALT of the original record. Where the caller flags such a placeholder, "." is
  counted as an allele other than k;
- DS (one value per ALT) or GP-derived dosages replace GT when the source says
  so and the value is present; otherwise GT is used;
- allele counts AN and AC count observed alleles only (a half-missing call adds
  1 to AN), whatever the dosage policy.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from naipo_bio.genotypes._parse import ABSENT, MISSING
from naipo_bio.stats._numba import kernel

SOURCE_GT = 0
SOURCE_DS = 1
SOURCE_GP = 2

HALF_MISSING = 0
HALF_CARRIER = 1

# Columns of the counts output.
COUNT_AN = 0
COUNT_AC = 1
COUNT_CALLED = 2
COUNT_HALF = 3
COUNT_HOM_REF = 4
COUNT_HET = 5
COUNT_HOM_ALT = 6
COUNT_HAPLOID = 7
COUNT_CARRIERS = 8  # called samples with dosage >= 0.5
COUNT_SUM = 9  # sum of called dosages
N_COUNTS = 10


@kernel
def _general_call(a1, a2, k, other, half_policy, haploid_alt):
    """Dosage and counts of one call outside the diploid fast path.

    Returns (dosage or NaN, AN, AC, half call, hom-ref, het, hom-alt, haploid).
    """
    if a2 == ABSENT:
        if a1 >= 0 or (other and a1 == MISSING):
            hit = 1.0 if a1 == k else 0.0
            return haploid_alt * hit, 1.0, hit, 0.0, 0.0, 0.0, 0.0, 1.0
        return np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    observed1 = a1 >= 0 or (other and a1 == MISSING)
    observed2 = a2 >= 0 or (other and a2 == MISSING)
    copies = (1.0 if a1 == k else 0.0) + (1.0 if a2 == k else 0.0)
    if observed1 and observed2:
        return (
            copies, 2.0, copies, 0.0, 1.0 if copies == 0.0 else 0.0,
            1.0 if copies == 1.0 else 0.0, 1.0 if copies == 2.0 else 0.0, 0.0,
        )  # fmt: skip
    if observed1 or observed2:
        value = 1.0 if (half_policy == HALF_CARRIER and copies > 0.0) else np.nan
        return value, 1.0, copies, 1.0, 0.0, 0.0, 0.0, 0.0
    return np.nan, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0


@kernel(parallel=True)
def dosages(
    alleles, ds, gp_dose, record, alt, source, placeholder, columns,
    half_policy, haploid_alt, impute, out, counts,
):  # fmt: skip
    """Fill ``out[t, :]`` with the dosage of test t (record ``record[t]``, ALT
    ``alt[t]``) for the samples ``columns``, and ``counts[t, :]`` with its counts.

    ``source[r]`` picks DS or GP over GT for record r; ``placeholder[r, s]`` is
    True where "." in record r stands for another ALT (pre-split records).
    Missing dosages are NaN, or the mean of the called dosages when ``impute``.

    Diploid fully called genotypes of GT records take a fast path that keeps
    only heterozygote and ALT-homozygote counters; every other call goes
    through :func:`_general_call`.
    """
    n_tests = record.shape[0]
    n = columns.shape[0]
    for t in prange(n_tests):
        r = record[t]
        k = alt[t]
        use_ds = source[r] == SOURCE_DS
        use_gp = source[r] == SOURCE_GP
        fast = not use_ds and not use_gp
        an = 0.0
        ac = 0.0
        n_called = 0.0
        n_half = 0.0
        hom_ref = 0.0
        het = 0.0
        hom_alt = 0.0
        haploid = 0.0
        carriers = 0.0
        total = 0.0
        fast_het = 0
        fast_hom_alt = 0
        fast_called = 0
        for i in range(n):
            s = columns[i]
            a1 = alleles[r, s, 0]
            a2 = alleles[r, s, 1]
            if fast and a1 >= 0 and a2 >= 0:
                copies = (a1 == k) + (a2 == k)
                fast_het += copies == 1
                fast_hom_alt += copies == 2
                fast_called += 1
                out[t, i] = copies
                continue
            value, d_an, d_ac, d_half, d_ref, d_het, d_alt, d_haploid = _general_call(
                a1, a2, k, placeholder[r, s], half_policy, haploid_alt
            )
            an += d_an
            ac += d_ac
            n_half += d_half
            hom_ref += d_ref
            het += d_het
            hom_alt += d_alt
            haploid += d_haploid
            if use_ds:
                candidate = ds[r, s, k - 1]
                if not np.isnan(candidate):
                    value = candidate
            elif use_gp:
                candidate = gp_dose[r, s, k - 1]
                if not np.isnan(candidate):
                    value = candidate
            out[t, i] = value
            if not np.isnan(value):
                n_called += 1.0
                total += value
                if value >= 0.5:
                    carriers += 1.0
        # Counts of the fast path follow from its two counters.
        het += fast_het
        hom_alt += fast_hom_alt
        hom_ref += fast_called - fast_het - fast_hom_alt
        an += 2.0 * fast_called
        ac += fast_het + 2.0 * fast_hom_alt
        n_called += fast_called
        total += fast_het + 2.0 * fast_hom_alt
        carriers += fast_het + fast_hom_alt
        counts[t, COUNT_AN] = an
        counts[t, COUNT_AC] = ac
        counts[t, COUNT_CALLED] = n_called
        counts[t, COUNT_HALF] = n_half
        counts[t, COUNT_HOM_REF] = hom_ref
        counts[t, COUNT_HET] = het
        counts[t, COUNT_HOM_ALT] = hom_alt
        counts[t, COUNT_HAPLOID] = haploid
        counts[t, COUNT_CARRIERS] = carriers
        counts[t, COUNT_SUM] = total
        if impute and n_called < n:
            # Mean imputation within the site, while the row is still in cache.
            mean = total / n_called if n_called > 0 else 0.0
            for i in range(n):
                if np.isnan(out[t, i]):
                    out[t, i] = mean
