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
N_COUNTS = 8


@kernel(parallel=True)
def dosages(
    alleles, ds, gp_dose, record, alt, source, placeholder, columns,
    half_policy, haploid_alt, out, counts,
):  # fmt: skip
    """Fill ``out[t, :]`` with the dosage of test t (record ``record[t]``, ALT
    ``alt[t]``) for the samples ``columns``, and ``counts[t, :]`` with its counts.

    ``source[r]`` picks DS or GP over GT for record r; ``placeholder[r, s]`` is
    True where "." in record r stands for another ALT (pre-split records).
    Missing dosages are NaN.
    """
    n_tests = record.shape[0]
    n = columns.shape[0]
    for t in prange(n_tests):
        r = record[t]
        k = alt[t]
        for c in range(N_COUNTS):
            counts[t, c] = 0.0
        for i in range(n):
            s = columns[i]
            a1 = alleles[r, s, 0]
            a2 = alleles[r, s, 1]
            other = placeholder[r, s]
            value = np.nan
            # Allele counts from GT: observed alleles only.
            if a2 == ABSENT:
                if a1 >= 0:
                    counts[t, COUNT_AN] += 1
                    counts[t, COUNT_AC] += a1 == k
                    counts[t, COUNT_HAPLOID] += 1
                    value = haploid_alt * (a1 == k)
            else:
                observed1 = a1 >= 0
                observed2 = a2 >= 0
                if other:
                    observed1 = observed1 or a1 == MISSING
                    observed2 = observed2 or a2 == MISSING
                copies = (a1 == k) + (a2 == k)
                if observed1 and observed2:
                    counts[t, COUNT_AN] += 2
                    counts[t, COUNT_AC] += copies
                    value = copies
                    if copies == 0:
                        counts[t, COUNT_HOM_REF] += 1
                    elif copies == 1:
                        counts[t, COUNT_HET] += 1
                    else:
                        counts[t, COUNT_HOM_ALT] += 1
                elif observed1 or observed2:
                    counts[t, COUNT_AN] += 1
                    counts[t, COUNT_AC] += copies
                    counts[t, COUNT_HALF] += 1
                    if half_policy == HALF_CARRIER and copies > 0:
                        value = 1.0
            if source[r] == SOURCE_DS:
                candidate = ds[r, s, k - 1]
                if not np.isnan(candidate):
                    value = candidate
            elif source[r] == SOURCE_GP:
                candidate = gp_dose[r, s, k - 1]
                if not np.isnan(candidate):
                    value = candidate
            out[t, i] = value
            if not np.isnan(value):
                counts[t, COUNT_CALLED] += 1
