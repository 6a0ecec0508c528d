"""numba kernels that decode BCF records in bulk.

A BCF record starts with two 32-bit lengths: of its shared part and of its
per-sample part. The shared part contains CHROM, POS, rlen, QUAL, counts, ID,
alleles, FILTER and INFO. The per-sample part has one block per FORMAT key,
with every sample's values of that key stored together. Values are *typed*: a
descriptor byte gives the type in its low four bits and the count in its high
four (15 means the count follows as a typed integer). Integers and floats are
little-endian.

``scan_records`` walks the records of a buffer and reports, per record, the
fields the reader needs and where the GT, DS and GP blocks start;
``decode_block`` then fills the same allele, DS and GP arrays as the VCF text
kernel in ``_parse``, with the same rules.
"""

from __future__ import annotations

import numpy as np

from naipo_bio.genotypes._parse import (
    ABSENT,
    MISSING,
    PARSE_BAD_NUMBER,
    PARSE_OK,
    PARSE_PLOIDY,
    PARSE_WRONG_SAMPLE_COUNT,
)
from naipo_bio.stats._numba import kernel

T_MISSING = 0
T_INT8 = 1
T_INT16 = 2
T_INT32 = 3
T_FLOAT = 5
T_CHAR = 7

FLOAT_MISSING = 0x7F800001
FLOAT_VECTOR_END = 0x7F800002

SCAN_DONE = 0  # every complete record of the buffer was scanned
SCAN_FULL = 1  # an output array is full: scan again from the returned offset
SCAN_BROKEN = 2  # the record at the returned offset is malformed

#: Maximum record length accepted; a larger length means a damaged file.
MAX_RECORD_BYTES = 1 << 31

#: Per-record integer outputs of ``scan_records`` (columns of ``info``).
I_START = 0
I_CHROM = 1
I_POS = 2
I_N_ALLELE = 3
I_N_SAMPLE = 4
I_GT = 5  # offset, type, count: three columns each
I_DS = 8
I_GP = 11
N_INFO = 14


@kernel
def _size(kind):
    if kind == T_INT8 or kind == T_CHAR:
        return 1
    if kind == T_INT16:
        return 2
    if kind == T_INT32 or kind == T_FLOAT:
        return 4
    return 0


@kernel
def _u32(buf, i):
    return (
        np.int64(buf[i])
        | (np.int64(buf[i + 1]) << 8)
        | (np.int64(buf[i + 2]) << 16)
        | (np.int64(buf[i + 3]) << 24)
    )


@kernel
def _int(buf, i, kind):
    """Signed integer of type ``kind`` at buf[i]."""
    if kind == T_INT8:
        v = np.int64(buf[i])
        return v - 256 if v >= 128 else v
    if kind == T_INT16:
        v = np.int64(buf[i]) | (np.int64(buf[i + 1]) << 8)
        return v - 65536 if v >= 32768 else v
    v = _u32(buf, i)
    return v - 4294967296 if v >= 2147483648 else v


@kernel
def _int_missing(kind):
    if kind == T_INT8:
        return -128
    if kind == T_INT16:
        return -32768
    return -2147483648


@kernel
def _descriptor(buf, i, end):
    """(type, count, offset of the values) of the typed value at buf[i];
    type -1 if it runs past ``end``."""
    if i >= end:
        return -1, 0, i
    kind = np.int64(buf[i] & 15)
    count = np.int64(buf[i] >> 4)
    i += 1
    if count == 15:
        if i >= end:
            return -1, 0, i
        count_kind = np.int64(buf[i] & 15)
        size = _size(count_kind)
        if (
            size == 0
            or count_kind == T_FLOAT
            or count_kind == T_CHAR
            or i + 1 + size > end
        ):
            return -1, 0, i
        count = _int(buf, i + 1, count_kind)
        i += 1 + size
    if count < 0:
        return -1, 0, i
    return kind, count, i


@kernel
def _entry(buf, q, end, n_values):
    """Read one INFO (``n_values`` 1) or FORMAT (``n_values`` samples) entry at
    buf[q]: (dictionary key, value type, count, offset of the values). The
    type is -1 if the entry is malformed or runs past ``end``."""
    kind, count, q = _descriptor(buf, q, end)
    size = _size(kind)
    if kind < 0 or size == 0 or kind == T_FLOAT or kind == T_CHAR or count < 1:
        return -1, -1, 0, q
    if q + count * size > end:
        return -1, -1, 0, q
    key = _int(buf, q, kind)
    q += count * size
    kind, count, q = _descriptor(buf, q, end)
    if kind < 0 or q + n_values * count * _size(kind) > end:
        return -1, -1, 0, q
    return key, kind, count, q


@kernel
def _value(buf, i, kind, bits_scratch, float_scratch):
    """Numeric value of type ``kind`` at buf[i]: (value, code) with code 0 for
    a value, 1 for missing and 2 for the end of a shorter vector.

    ``float_scratch`` is a float32 view of the one-element uint32 array
    ``bits_scratch``, which turns the bits of a float into its value.
    """
    if kind == T_FLOAT:
        bits = _u32(buf, i)
        if bits == FLOAT_MISSING:
            return np.nan, 1
        if bits == FLOAT_VECTOR_END:
            return np.nan, 2
        bits_scratch[0] = bits
        return np.float64(float_scratch[0]), 0
    v = _int(buf, i, kind)
    missing = _int_missing(kind)
    if v == missing:
        return np.nan, 1
    if v == missing + 1:
        return np.nan, 2
    return np.float64(v), 0


@kernel
def _copy_text(buf, i, count, text, t):
    """Copy a typed string of ``count`` bytes to text[t:], stopping at NUL."""
    for j in range(count):
        c = buf[i + j]
        if c == 0:
            break
        text[t] = c
        t += 1
    return t


@kernel
def _write_int(value, text, t):
    if value < 0:
        text[t] = 45
        t += 1
        value = -value
    digits = 1
    scale = 1
    while value // scale >= 10:
        scale *= 10
        digits += 1
    for _ in range(digits):
        text[t] = 48 + (value // scale) % 10
        t += 1
        scale //= 10
    return t


@kernel
def scan_records(buf, start, keys, info, text, text_end):
    """Scan the complete records of buf[start:].

    Parameters
    ----------
    keys : (4,) int64
        Header dictionary ids of GT, DS, GP and the annotation INFO key (-1
        where the header lacks one).
    info : (capacity, N_INFO) int64
        Filled per record: columns ``I_*``; GT/DS/GP offsets are -1 where the
        record has no such FORMAT key.
    text : uint8 array
        Filled per record with "REF\\tALT\\tFILTER ids\\tannotation\\n"; record
        r ends at ``text_end[r]``.

    Returns (records scanned, offset after the last one, SCAN_* status).
    """
    n = buf.shape[0]
    capacity = info.shape[0]
    t = 0
    r = 0
    p = start
    while p + 8 <= n:
        if r == capacity:
            return r, p, SCAN_FULL
        l_shared = _u32(buf, p)
        l_indiv = _u32(buf, p + 4)
        end = p + 8 + l_shared + l_indiv
        if l_shared + l_indiv > MAX_RECORD_BYTES:
            return r, p, SCAN_BROKEN
        if end > n:
            break
        if t + 6 * l_shared + 64 > text.shape[0]:
            return r, p, SCAN_FULL
        q = p + 8
        shared_end = q + l_shared
        if l_shared < 24:
            return r, p, SCAN_BROKEN
        info[r, I_START] = p
        info[r, I_CHROM] = _int(buf, q, T_INT32)
        info[r, I_POS] = _int(buf, q + 4, T_INT32) + 1
        n_info = np.int64(buf[q + 16]) | (np.int64(buf[q + 17]) << 8)
        n_allele = np.int64(buf[q + 18]) | (np.int64(buf[q + 19]) << 8)
        n_sample = (
            np.int64(buf[q + 20])
            | (np.int64(buf[q + 21]) << 8)
            | (np.int64(buf[q + 22]) << 16)
        )
        n_fmt = np.int64(buf[q + 23])
        info[r, I_N_ALLELE] = n_allele
        info[r, I_N_SAMPLE] = n_sample
        q += 24
        kind, count, q = _descriptor(buf, q, shared_end)  # ID
        q += count * _size(kind)
        if kind < 0 or q > shared_end:
            return r, p, SCAN_BROKEN
        for a in range(n_allele):
            kind, count, q = _descriptor(buf, q, shared_end)
            if kind < 0 or q + count > shared_end:
                return r, p, SCAN_BROKEN
            if a == 1:
                text[t] = 9
                t += 1
            elif a > 1:
                text[t] = 44
                t += 1
            t = _copy_text(buf, q, count, text, t)
            q += count * _size(kind)
        if n_allele < 2:
            if n_allele == 0:
                text[t] = 78  # N
                t += 1
            text[t] = 9
            text[t + 1] = 46  # "."
            t += 2
        text[t] = 9
        t += 1
        kind, count, q = _descriptor(buf, q, shared_end)  # FILTER
        if kind < 0 or q + count * _size(kind) > shared_end:
            return r, p, SCAN_BROKEN
        if count == 0:
            text[t] = 46
            t += 1
        for j in range(count):
            if j:
                text[t] = 59
                t += 1
            t = _write_int(_int(buf, q, kind), text, t)
            q += _size(kind)
        text[t] = 9
        t += 1
        for _ in range(n_info):
            key, kind, count, q = _entry(buf, q, shared_end, 1)
            if kind < 0:
                return r, p, SCAN_BROKEN
            if key == keys[3] and kind == T_CHAR:
                t = _copy_text(buf, q, count, text, t)
            q += count * _size(kind)
        text[t] = 10
        t += 1
        text_end[r] = t
        for c in range(3):
            info[r, I_GT + 3 * c] = -1
        q = shared_end
        for _ in range(n_fmt):
            key, kind, count, q = _entry(buf, q, end, n_sample)
            if kind < 0:
                return r, p, SCAN_BROKEN
            for c in range(3):
                if key == keys[c]:
                    info[r, I_GT + 3 * c] = q
                    info[r, I_GT + 3 * c + 1] = kind
                    info[r, I_GT + 3 * c + 2] = count
            q += n_sample * count * _size(kind)
        r += 1
        p = end
    return r, p, SCAN_DONE


@kernel
def _diploid_int8_gt(buf, at, target, alleles, i):
    """GT-only records with two 8-bit values per sample, the usual layout."""
    for s in range(target.shape[0]):
        o = target[s]
        if o < 0:
            continue
        v1 = np.int64(buf[at + 2 * s])
        v2 = np.int64(buf[at + 2 * s + 1])
        if v1 >= 128:
            v1 -= 256
        a1 = (v1 >> 1) - 1
        alleles[i, o, 0] = a1 if a1 >= 0 else MISSING
        if v2 == 129:  # int8 vector end: a haploid call
            alleles[i, o, 1] = ABSENT
        else:
            if v2 >= 128:
                v2 -= 256
            a2 = (v2 >> 1) - 1
            alleles[i, o, 1] = a2 if a2 >= 0 else MISSING


@kernel
def decode_block(
    buf, info, rows, n_alt, n_samples, target, alleles, ds, gp_dose, status, bad_sample
):
    """Decode GT alleles, DS values and GP dosages of the records ``rows``.

    Arrays and codes as in ``_parse.parse_block``: output row i is record
    ``rows[i]`` of ``info``.
    """
    k_max = ds.shape[2]
    bits_scratch = np.empty(1, dtype=np.uint32)
    float_scratch = bits_scratch.view(np.float32)
    for i in range(rows.shape[0]):
        r = rows[i]
        status[i] = PARSE_OK
        bad_sample[i] = -1
        if info[r, I_N_SAMPLE] != n_samples:
            status[i] = PARSE_WRONG_SAMPLE_COUNT
            continue
        gt_at = info[r, I_GT]
        gt_kind = info[r, I_GT + 1]
        gt_count = info[r, I_GT + 2]
        ds_at = info[r, I_DS]
        ds_kind = info[r, I_DS + 1]
        ds_count = info[r, I_DS + 2]
        gp_at = info[r, I_GP]
        gp_kind = info[r, I_GP + 1]
        gp_count = info[r, I_GP + 2]
        if (gt_at >= 0 and not (T_INT8 <= gt_kind <= T_INT32)) or (
            (ds_at >= 0 and not (T_INT8 <= ds_kind <= T_FLOAT))
            or (gp_at >= 0 and not (T_INT8 <= gp_kind <= T_FLOAT))
        ):
            status[i] = PARSE_BAD_NUMBER
            continue
        if gt_kind == T_INT8 and gt_count == 2 and ds_at < 0 and gp_at < 0:
            _diploid_int8_gt(buf, gt_at, target, alleles, i)
            continue
        gt_size = _size(gt_kind)
        ds_size = _size(ds_kind)
        gp_size = _size(gp_kind)
        n_k = min(n_alt[i], k_max)
        for s in range(n_samples):
            o = target[s]
            if o < 0:
                continue
            alleles[i, o, 0] = MISSING
            alleles[i, o, 1] = MISSING
            if gt_at >= 0:
                base = gt_at + s * gt_count * gt_size
                called = 0
                for j in range(gt_count):
                    v = _int(buf, base + j * gt_size, gt_kind)
                    if v == _int_missing(gt_kind) + 1:  # end of a shorter vector
                        break
                    if called >= 2:
                        status[i] = PARSE_PLOIDY
                        bad_sample[i] = s
                        break
                    allele = (v >> 1) - 1
                    alleles[i, o, called] = allele if allele >= 0 else MISSING
                    called += 1
                if called == 1:
                    alleles[i, o, 1] = ABSENT
            if ds_at >= 0 or gp_at >= 0:
                for k in range(k_max):
                    ds[i, o, k] = np.nan
                    gp_dose[i, o, k] = np.nan
            if ds_at >= 0:
                base = ds_at + s * ds_count * ds_size
                for k in range(min(n_k, ds_count)):
                    value, code = _value(
                        buf, base + k * ds_size, ds_kind, bits_scratch, float_scratch
                    )
                    if code == 2:
                        break
                    ds[i, o, k] = value
            if gp_at >= 0:
                base = gp_at + s * gp_count * gp_size
                a = 0
                b = 0
                seen = False
                for k in range(n_k):
                    gp_dose[i, o, k] = 0.0
                for j in range(gp_count):
                    value, code = _value(
                        buf, base + j * gp_size, gp_kind, bits_scratch, float_scratch
                    )
                    if code == 2:
                        break
                    if code == 0:
                        seen = True
                        for k in range(1, n_k + 1):
                            gp_dose[i, o, k - 1] += value * ((a == k) + (b == k))
                    a += 1
                    if a > b:
                        b += 1
                        a = 0
                if not seen:
                    for k in range(n_k):
                        gp_dose[i, o, k] = np.nan
