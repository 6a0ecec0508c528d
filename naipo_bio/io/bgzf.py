"""Sequential reads of BGZF files (bgzipped VCF, BCF) from a virtual offset.

A BGZF file is a series of gzip members of at most 64 KiB each, whose gzip
header carries the member's compressed size. That makes the members easy to
cut out of a large read of the file and inflate one by one. Inflation uses
ISA-L (the ``isal`` package): on a 1 GB BCF it took 0.6 s against 1.5 s with
zlib, about what ``bcftools view`` needs to read the same file. Every member's
CRC32 and size are checked.

A *virtual offset*, as stored in tabix and CSI indexes, is the compressed
offset of a member shifted left by 16 bits plus an offset into its inflated
bytes.
"""

from __future__ import annotations

import struct
from collections import deque
from pathlib import Path

from isal import isal_zlib

from naipo_bio.errors import InputError

#: Compressed bytes read from the file at a time.
READ_SIZE = 1 << 20

_HEADER = 18  # gzip header with the BC extra field
_FOOTER = 8  # CRC32 and inflated size


class BgzfReader:
    """Inflated bytes of a BGZF file from a virtual offset onwards.

    ``read(size)`` returns ``size`` bytes, fewer only at the end of the file
    (``b""`` once it is exhausted).
    """

    def __init__(self, path: str | Path, virtual_offset: int = 0):
        self.path = Path(path)
        self._file = open(self.path, "rb")  # noqa: SIM115 (closed in close())
        self._file.seek(virtual_offset >> 16)
        self._offset = virtual_offset >> 16  # compressed offset of _raw[0]
        self._raw = b""
        self._skip = virtual_offset & 0xFFFF
        self._members: deque[bytes] = deque()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> BgzfReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fail(self, offset: int, problem: str) -> InputError:
        return InputError(
            f"{self.path}: the BGZF block at byte {offset:,} {problem}. The file "
            "is damaged or was not written with bgzip/bcftools; recreate it "
            "(bgzip or bcftools view -Ob) and index it again."
        )

    def read(self, size: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while total < size:
            if not self._members:
                members = self._inflate_available()
                if members is None:
                    break
                self._members.extend(members)
                continue
            part = self._members.popleft()
            if total + len(part) > size:
                cut = size - total
                self._members.appendleft(part[cut:])
                part = part[:cut]
            parts.append(part)
            total += len(part)
        return b"".join(parts)

    def _inflate_available(self) -> list[bytes] | None:
        """Inflate every whole member of the next read; None at the end."""
        more = self._file.read(READ_SIZE)
        raw = self._raw + more if self._raw else more
        if not raw:
            return None
        view = memoryview(raw)
        out: list[bytes] = []
        at = 0

        while at + _HEADER <= len(raw):
            if (
                raw[at : at + 4] != b"\x1f\x8b\x08\x04"
                or raw[at + 12 : at + 14] != b"BC"
            ):
                raise self._fail(self._offset + at, "does not start a BGZF member")
            block_size = struct.unpack_from("<H", raw, at + 16)[0] + 1
            if at + block_size > len(raw):
                break
            crc, length = struct.unpack_from("<II", raw, at + block_size - _FOOTER)
            try:
                data = isal_zlib.decompress(
                    view[at + _HEADER : at + block_size - _FOOTER], -15
                )
            except isal_zlib.error as exc:
                raise self._fail(
                    self._offset + at, f"cannot be inflated ({exc})"
                ) from exc
            if len(data) != length or isal_zlib.crc32(data) != crc:
                raise self._fail(self._offset + at, "fails its CRC32 or size check")
            if self._skip:
                data = data[self._skip :]
                self._skip = 0
            if data:
                out.append(data)
            at += block_size

        self._raw = bytes(view[at:])
        self._offset += at
        if not more and self._raw:
            raise self._fail(self._offset, "is cut short (the file is truncated)")
        if not out and not more:
            return None
        return out
