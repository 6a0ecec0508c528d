"""numba kernels that decode the sample columns of VCF text lines in bulk.

A block holds the sample part of m records (everything after the FORMAT
column), concatenated into one uint8 buffer. For each record the caller gives
the position of GT, DS and GP within its FORMAT keys (-1 if absent) and its
number of ALT alleles.

Allele codes: an allele index >= 0, ``MISSING`` for ".", ``ABSENT`` for the
second allele of a haploid call.
"""

from __future__ import annotations

import numpy as np

from naipo_bio.stats._numba import kernel

MISSING = -1
ABSENT = -2

PARSE_OK = 0
PARSE_WRONG_SAMPLE_COUNT = 1
PARSE_PLOIDY = 2
PARSE_BAD_NUMBER = 3

TAB = 9
COLON = 58
SLASH = 47
PIPE = 124
DOT = 46
COMMA = 44
MINUS = 45
PLUS = 43


@kernel
def _parse_float(buf, start, end):
    """Decimal number in buf[start:end]; NaN for "." or an empty field."""
    if end <= start or (end - start == 1 and buf[start] == DOT):
        return np.nan
    i = start
    sign = 1.0
    if buf[i] == MINUS:
        sign = -1.0
        i += 1
    elif buf[i] == PLUS:
        i += 1
    value = 0.0
    digits = 0
    while i < end and 48 <= buf[i] <= 57:
        value = value * 10.0 + (buf[i] - 48)
        i += 1
        digits += 1
    if i < end and buf[i] == DOT:
        i += 1
        scale = 0.1
        while i < end and 48 <= buf[i] <= 57:
            value += (buf[i] - 48) * scale
            scale *= 0.1
            i += 1
            digits += 1
    if i < end and (buf[i] == 101 or buf[i] == 69):  # e, E
        i += 1
        exp_sign = 1
        if i < end and buf[i] == MINUS:
            exp_sign = -1
            i += 1
        elif i < end and buf[i] == PLUS:
            i += 1
        exponent = 0
        while i < end and 48 <= buf[i] <= 57:
            exponent = exponent * 10 + (buf[i] - 48)
            i += 1
        value *= 10.0 ** (exp_sign * exponent)
    if i != end or digits == 0:
        return -np.inf  # not a number: flagged by the caller
    return sign * value


@kernel
def _gp_dosages(buf, start, end, n_alt, out):
    """Expected ALT allele counts from diploid genotype probabilities (VCF order:
    genotype a/b with a <= b has index b * (b + 1) / 2 + a)."""
    for k in range(n_alt):
        out[k] = 0.0
    b = 0
    a = 0
    i = start
    any_value = False
    while i <= end:
        j = i
        while j < end and buf[j] != COMMA:
            j += 1
        p = _parse_float(buf, i, j)
        if p == -np.inf:
            return False
        if not np.isnan(p):
            any_value = True
            for k in range(1, n_alt + 1):
                out[k - 1] += p * ((a == k) + (b == k))
        a += 1
        if a > b:
            b += 1
            a = 0
        i = j + 1
    if not any_value:
        for k in range(n_alt):
            out[k] = np.nan
    return True


@kernel
def find_samples(buf, line_start, line_end, sample_start):
    """Fill, for each line, the first byte after its ninth tab (its end when it
    has fewer columns). Lines are buf[line_start[i]:line_end[i]]."""
    for i in range(line_start.shape[0]):
        tabs = 0
        j = line_start[i]
        end = line_end[i]
        sample_start[i] = end
        while j < end:
            if buf[j] == TAB:
                tabs += 1
                if tabs == 9:
                    sample_start[i] = j + 1
                    break
            j += 1


def scan_lines(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starts, sample-column starts and ends of the complete lines of ``buf``.

    Newlines are found by NumPy in bulk; only the short stretch up to each
    line's ninth tab is walked byte by byte. A carriage return before a newline
    is not part of the line.
    """
    newlines = np.flatnonzero(buf == 10)
    line_start = np.empty(newlines.size, dtype=np.int64)
    line_start[:1] = 0
    line_start[1:] = newlines[:-1] + 1
    line_end = newlines.astype(np.int64)
    carriage = (line_end > line_start) & (buf[np.maximum(line_end - 1, 0)] == 13)
    line_end[carriage] -= 1
    sample_start = np.empty(newlines.size, dtype=np.int64)
    find_samples(buf, line_start, line_end, sample_start)
    return line_start, sample_start, line_end


@kernel
def parse_block(
    buf, starts, ends, gt_index, ds_index, gp_index, n_alt, n_samples, target,
    alleles, ds, gp_dose, status, bad_sample,
):  # fmt: skip
    """Decode GT alleles, DS values and GP dosages of every sample of m records.

    Parameters
    ----------
    buf : uint8 array
        Text holding the sample columns of the records: record r at
        buf[starts[r]:ends[r]] (a trailing newline is allowed).
    gt_index, ds_index, gp_index : (m,) int64
        Position of GT / DS / GP among the record's FORMAT keys, -1 if absent.
    n_alt : (m,) int64
        Number of ALT alleles of each record.
    n_samples : int
        Sample columns of each record.
    target : (n_samples,) int64
        Output position of each sample column, -1 for samples not kept.
    alleles : (m, n_out, 2) int16
        Filled with allele codes, at the samples' output positions.
    ds, gp_dose : (m, n_out, k_max) float32
        Filled with DS values and GP-derived dosages per ALT (NaN if absent);
        left untouched for records without DS or GP.
    status : (m,) int64
        PARSE_OK, or the first problem met on the record.
    bad_sample : (m,) int64
        Sample column of that problem (-1 when it concerns the whole record).
    """
    m = starts.shape[0]
    k_max = ds.shape[2]
    n_out = alleles.shape[1]
    gp_buffer = np.empty(k_max)
    for r in range(m):
        status[r] = PARSE_OK
        bad_sample[r] = -1
        pos = starts[r]
        end_line = min(ends[r], buf.shape[0])
        while end_line > pos and (buf[end_line - 1] == 10 or buf[end_line - 1] == 13):
            end_line -= 1
        # Outputs are written only where they will be read: DS and GP arrays
        # of records without those fields are never looked at.
        if ds_index[r] >= 0 or gp_index[r] >= 0:
            for o in range(n_out):
                for k in range(k_max):
                    ds[r, o, k] = np.nan
                    gp_dose[r, o, k] = np.nan
        s = 0
        while s < n_samples and pos <= end_line:
            o = target[s]
            # Fast path: a three-character diploid call ("0/1", "1|1", "./.")
            # as the whole field, the usual layout of GT-only files.
            if (
                gt_index[r] == 0
                and pos + 3 <= end_line
                and (pos + 3 == end_line or buf[pos + 3] == TAB)
                and (buf[pos + 1] == SLASH or buf[pos + 1] == PIPE)
            ):
                c1 = buf[pos]
                c2 = buf[pos + 2]
                if (48 <= c1 <= 57 or c1 == DOT) and (48 <= c2 <= 57 or c2 == DOT):
                    if o >= 0:
                        alleles[r, o, 0] = c1 - 48 if c1 != DOT else MISSING
                        alleles[r, o, 1] = c2 - 48 if c2 != DOT else MISSING
                    s += 1
                    pos += 4
                    continue
            field_end = pos
            while field_end < end_line and buf[field_end] != TAB:
                field_end += 1
            if o < 0:
                s += 1
                pos = field_end + 1
                continue
            alleles[r, o, 0] = MISSING
            alleles[r, o, 1] = MISSING
            # Walk the ':'-separated subfields of this sample.
            key = 0
            gt_seen = False
            sub = pos
            while sub <= field_end:
                sub_end = sub
                while sub_end < field_end and buf[sub_end] != COLON:
                    sub_end += 1
                if key == gt_index[r]:
                    gt_seen = True
                    count = 0
                    i = sub
                    while i < sub_end:
                        if buf[i] == SLASH or buf[i] == PIPE:
                            i += 1
                            continue
                        if count >= 2:
                            status[r] = PARSE_PLOIDY
                            bad_sample[r] = s
                            break
                        if buf[i] == DOT:
                            alleles[r, o, count] = MISSING
                            i += 1
                        else:
                            value = 0
                            digits = 0
                            while i < sub_end and 48 <= buf[i] <= 57:
                                value = value * 10 + (buf[i] - 48)
                                i += 1
                                digits += 1
                            if digits == 0:
                                status[r] = PARSE_BAD_NUMBER
                                bad_sample[r] = s
                                break
                            alleles[r, o, count] = value
                        count += 1
                    if count == 1:
                        alleles[r, o, 1] = ABSENT
                elif key == ds_index[r]:
                    k = 0
                    i = sub
                    while i <= sub_end and k < n_alt[r] and k < k_max:
                        j = i
                        while j < sub_end and buf[j] != COMMA:
                            j += 1
                        value_f = _parse_float(buf, i, j)
                        if value_f == -np.inf:
                            status[r] = PARSE_BAD_NUMBER
                            bad_sample[r] = s
                        else:
                            ds[r, o, k] = value_f
                        k += 1
                        i = j + 1
                elif key == gp_index[r]:
                    if _gp_dosages(buf, sub, sub_end, min(n_alt[r], k_max), gp_buffer):
                        for k in range(min(n_alt[r], k_max)):
                            gp_dose[r, o, k] = gp_buffer[k]
                    else:
                        status[r] = PARSE_BAD_NUMBER
                        bad_sample[r] = s
                key += 1
                sub = sub_end + 1
            if gt_index[r] >= 0 and not gt_seen:
                # A GT dropped from the end of the sample's fields (or a sample
                # written as a bare ".") is one missing allele, as htslib reads it.
                alleles[r, o, 1] = ABSENT
            s += 1
            pos = field_end + 1
        if s != n_samples or pos <= end_line:
            if status[r] == PARSE_OK:
                status[r] = PARSE_WRONG_SAMPLE_COUNT


def block_outputs(m: int, n_out: int, k_max: int):
    """Allocate the arrays a block decoder fills: alleles, DS, GP dosages,
    status and the sample column of each record's problem."""
    return (
        np.empty((m, n_out, 2), dtype=np.int16),
        np.empty((m, n_out, k_max), dtype=np.float32),
        np.empty((m, n_out, k_max), dtype=np.float32),
        np.empty(m, dtype=np.int64),
        np.empty(m, dtype=np.int64),
    )


VALUE_OK = 0
VALUE_ALLELE = 1  # a GT allele index above the record's number of ALT alleles
VALUE_DOSAGE = 2  # a DS or GP dosage outside [0, 2]

#: Rounding allowed around the dosage range (imputation tools print 3 decimals).
DOSAGE_SLACK = 1e-3


@kernel
def check_values(alleles, ds, gp_dose, source, n_alt, use_ds, use_gp):
    """Find the first impossible value of a decoded block.

    Returns (record, sample position, VALUE_* code). The code is VALUE_OK when
    every GT allele index is at most the record's ALT count and every DS or GP
    dosage in use (source ``use_ds`` or ``use_gp``) lies in [0, 2].
    """
    m, n, _ = alleles.shape
    k_max = ds.shape[2]
    for r in range(m):
        top = n_alt[r]
        for s in range(n):
            if alleles[r, s, 0] > top or alleles[r, s, 1] > top:
                return r, s, VALUE_ALLELE
        if source[r] == use_ds or source[r] == use_gp:
            values = ds if source[r] == use_ds else gp_dose
            for s in range(n):
                for k in range(min(top, k_max)):
                    x = values[r, s, k]
                    if x < -DOSAGE_SLACK or x > 2.0 + DOSAGE_SLACK:
                        return r, s, VALUE_DOSAGE
    return -1, -1, VALUE_OK
