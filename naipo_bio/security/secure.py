"""Secure aggregation: the coordinator learns only sums over all sites.

Every quantity the pooled score test needs is a sum over sites. In secure mode
each site writes its values for every biomarker of a consortium-wide universe
(zeros where it has none), in fixed point modulo 2^64 (counts exactly, real
values as an integer and a fraction word), and adds a mask. For each pair of
participants (i, j) both derive the same key from X25519 (HKDF-SHA256 of the
shared secret, bound to the analysis), expand it with ChaCha20 into one 64-bit
word per value, and site i adds the words if i < j and subtracts them
otherwise. Summed over all participants the masks cancel; any proper subset of
bundles, and every single bundle, looks uniformly random.

Per-site values (heterogeneity, forest plots, per-site fits) do not exist in
this mode, and a missing participant leaves the masks uncancelled.

References
----------
Bonawitz, K. et al. (2017). Practical secure aggregation for privacy-preserving
machine learning. Proceedings of ACM CCS 2017, 1175-1191.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from naipo_bio.contract import SECURE_FIELDS, SECURE_SCHEMA, SECURE_WORDS, STATUS_OK
from naipo_bio.errors import ConfigError, InputError
from naipo_bio.io.atomic import atomic_file

#: Bits of a real value's integer word (hi) and fraction word (lo).
HI_BITS = 20
LO_BITS = 52
#: Recorded in the manifest so that a merge rejects a different encoding.
ENCODING = f"fixed point mod 2^64, hi {HI_BITS} / lo {LO_BITS} bits"

FIELDS = SECURE_FIELDS
EXACT = np.array(list(SECURE_FIELDS.values()))

log = logging.getLogger(__name__)


def read_universe(path: str | Path) -> pd.DataFrame:
    """Read the consortium's biomarker universe (kind, biomarker_id) in file order."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"The secure-aggregation universe was not found: {path}")
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if list(frame.columns[:2]) != ["kind", "biomarker_id"]:
        raise InputError(f"{path}: the universe needs columns kind and biomarker_id.")
    if frame.duplicated(["kind", "biomarker_id"]).any():
        raise InputError(f"{path}: the universe lists a biomarker twice.")
    return frame[["kind", "biomarker_id"]].reset_index(drop=True)


def write_universe(frame: pd.DataFrame, out: str | Path) -> Path:
    """Write a universe table (kind, biomarker_id) atomically."""
    frame = frame[["kind", "biomarker_id"]]
    if frame.duplicated().any():
        raise InputError("The universe lists a biomarker twice.")
    with atomic_file(out) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)
    return Path(out)


def universe_from_lists(lists: dict[str, str | Path]) -> pd.DataFrame:
    """Build a universe from one id list per kind (first column, one id per line)."""
    parts = []
    for kind, path in lists.items():
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"The id list of {kind} was not found: {path}")
        ids = [line.split("\t")[0].strip() for line in path.read_text().splitlines()]
        ids = list(dict.fromkeys(i for i in ids if i and not i.startswith("#")))
        if not ids:
            raise InputError(f"{path}: the id list of {kind} is empty.")
        parts.append(pd.DataFrame({"kind": kind, "biomarker_id": ids}))
    return pd.concat(parts, ignore_index=True)


def file_digest(path: str | Path) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pair_key(own_private, other_public, context: bytes) -> bytes:
    """Derive the 32-byte mask key two sites share, bound to the analysis."""
    shared = own_private.exchange(other_public)
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None,
        info=b"naipo-bio secure aggregation v1|" + context,
    ).derive(shared)  # fmt: skip


def keystream(key: bytes, words: int) -> np.ndarray:
    """``words`` pseudorandom 64-bit words from ChaCha20 (zero nonce: each key
    serves one analysis round only)."""
    encryptor = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    return np.frombuffer(encryptor.update(bytes(8 * words)), dtype="<u8").copy()


def mask(
    site: str,
    participants: list[str],
    registry: dict,
    own_private,
    context: bytes,
    words: int,
) -> np.ndarray:
    """This site's total mask: + stream for partners after it, - before it."""
    total = np.zeros(words, dtype=np.uint64)
    for other in participants:
        if other == site:
            continue
        if other not in registry:
            raise ConfigError(f"Participant {other!r} has no keys in the registry.")
        stream = keystream(
            pair_key(own_private, registry[other]["agreement"], context), words
        )
        if site < other:
            total += stream
        else:
            total -= stream
    return total


def encode(values: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Fixed-point words modulo 2^64, (rows, len(SECURE_WORDS)).

    A count is one word holding the integer. A real x becomes two words: hi =
    floor(x 2^20) as a signed integer and lo = round((x 2^20 - hi) 2^52) in
    [0, 2^52]. Both sum without carry between them (lo for fewer than 4096
    sites), and hi 2^-20 + lo 2^-72 recovers the total to about 2^-73, far below
    double precision of any realistic score or information.
    """
    columns = []
    for j, is_exact in enumerate(exact):
        x = values[:, j]
        if is_exact:
            if np.any(np.abs(x) >= 2.0**53) or np.any(x != np.round(x)):
                raise InputError(
                    f"Field {list(FIELDS)[j]} contains a non-integer count or one "
                    "of 2^53 or more."
                )
            columns.append(x.astype(np.int64).view(np.uint64))
            continue
        scaled = x * 2.0**HI_BITS
        if np.any(~np.isfinite(scaled)) or np.any(np.abs(scaled) >= 2.0**62):
            raise InputError(
                f"Field {list(FIELDS)[j]} contains a value outside what secure "
                f"aggregation can encode (|x| < 2^{62 - HI_BITS}, finite)."
            )
        hi = np.floor(scaled)
        lo = np.round((scaled - hi) * 2.0**LO_BITS)
        columns.append(hi.astype(np.int64).view(np.uint64))
        columns.append(lo.astype(np.uint64))
    return (
        np.column_stack(columns) if columns else np.zeros((len(values), 0), np.uint64)
    )


def decode(words: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode` for summed words."""
    out = np.zeros((words.shape[0], len(exact)))
    k = 0
    for j, is_exact in enumerate(exact):
        if is_exact:
            out[:, j] = words[:, k].view(np.int64).astype(np.float64)
            k += 1
            continue
        hi = words[:, k].view(np.int64).astype(np.float64)
        lo = words[:, k + 1].astype(np.float64)
        out[:, j] = hi * 2.0**-HI_BITS + lo * 2.0 ** -(HI_BITS + LO_BITS)
        k += 2
    return out


def site_vectors(tables: dict[str, pd.DataFrame], universe: pd.DataFrame) -> np.ndarray:
    """(universe rows, fields) values of one site; zeros where it has nothing."""
    values = np.zeros((len(universe), len(FIELDS)))
    rows_of = pd.Series(
        np.arange(len(universe)),
        index=pd.MultiIndex.from_arrays([universe.kind, universe.biomarker_id]),
    )
    outside = 0
    for kind, table in tables.items():
        ok = table.loc[table.status == STATUS_OK]
        keys = pd.MultiIndex.from_arrays([np.full(len(ok), kind), ok.biomarker_id])
        where = rows_of.reindex(keys).to_numpy()
        found = ~np.isnan(where)
        outside += int((~found).sum())
        target = where[found].astype(np.int64)
        for j, name in enumerate(FIELDS):
            if name == "present":
                column = np.ones(int(found.sum()))
            else:
                column = pd.to_numeric(ok[name], errors="coerce").to_numpy(float)[found]
            values[target, j] = np.nan_to_num(column, nan=0.0)
    if outside:
        log.warning(
            "%d biomarkers of this site are not in the secure universe; left out",
            outside,
        )
    return values


def masked_table(
    values: np.ndarray, universe: pd.DataFrame, words_mask: np.ndarray
) -> pa.Table:
    """Build the table a site releases: encoded values plus its mask, per word."""
    words = encode(values, EXACT) + words_mask.reshape(len(universe), -1)
    columns = {
        "kind": universe.kind.tolist(),
        "biomarker_id": universe.biomarker_id.tolist(),
    }
    for k, name in enumerate(SECURE_WORDS):
        columns[name] = words[:, k]
    return pa.Table.from_pydict(columns, schema=SECURE_SCHEMA)


def unmask_sum(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Sum the masked tables of all participants and decode the totals."""
    first = tables[0]
    total = np.zeros((len(first), len(SECURE_WORDS)), dtype=np.uint64)
    for table in tables:
        if not (
            table.kind.equals(first.kind)
            and table.biomarker_id.equals(first.biomarker_id)
        ):
            raise InputError(
                "The secure tables list different biomarkers; every site must use "
                "the same universe file."
            )
        total += table[SECURE_WORDS].to_numpy(dtype=np.uint64)
    decoded = decode(total, EXACT)
    out = first[["kind", "biomarker_id"]].copy()
    for j, name in enumerate(FIELDS):
        out[name] = decoded[:, j]
    return out
