"""Opening VCF/BCF files with pysam, with errors that name the file and the fix."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pysam

from naipo_bio.errors import InputError
from naipo_bio.io.ids import check_unique_samples

BCF_MAGIC = b"BCF\x02"


def header_text(path: Path, limit: int = 64 << 20) -> str:
    """The text header of a VCF, VCF.gz or BCF, read without htslib."""
    with open(path, "rb") as raw:
        start = raw.read(2)
    opener = gzip.open if start == b"\x1f\x8b" else open
    with opener(path, "rb") as handle:
        head = handle.read(5)
        if head.startswith(BCF_MAGIC):
            (length,) = struct.unpack("<I", handle.read(4))
            return handle.read(min(length, limit)).decode("utf-8", "replace")
        lines = [head + handle.readline()]
        size = len(lines[0])
        for line in handle:
            lines.append(line)
            size += len(line)
            if line.startswith(b"#CHROM") or not line.startswith(b"#") or size > limit:
                break
        return b"".join(lines).decode("utf-8", "replace")


def samples_from_header_text(text: str) -> list[str]:
    for line in text.splitlines():
        if line.startswith("#CHROM"):
            return line.rstrip("\r\n").split("\t")[9:]
    return []


def open_variant_file(path: str | Path, what: str = "VCF") -> pysam.VariantFile:
    """Open a VCF/BCF, rejecting empty files, broken headers and repeated samples."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"The {what} file was not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"The {what} file {path} is empty (0 bytes).")
    try:
        text = header_text(path)
    except (OSError, EOFError, struct.error) as exc:
        raise InputError(
            f"The {what} file {path} is not a readable VCF/BCF ({exc}). Check that "
            "it was copied completely and is bgzip-compressed, not plain gzip."
        ) from None
    if not text.startswith("##fileformat=VCF"):
        raise InputError(
            f"The {what} file {path} does not start with a ##fileformat=VCF line; it "
            "is not a VCF/BCF or its header is broken."
        )
    if "#CHROM" not in text:
        raise InputError(
            f"The {what} file {path} has no #CHROM header line; the header is "
            "truncated or broken."
        )
    check_unique_samples(samples_from_header_text(text), path, f"{what} header")
    try:
        handle = pysam.VariantFile(str(path))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"htslib could not open the {what} file {path}: {exc}. Validate it with "
            "'bcftools view -h'."
        ) from None
    return handle


def header_contigs(handle: pysam.VariantFile) -> dict[str, int | None]:
    """Contig names of the header with their declared lengths (None if absent)."""
    return {name: contig.length for name, contig in handle.header.contigs.items()}


def reference_build_hint(handle: pysam.VariantFile) -> str | None:
    """Value of a ##reference header line, if any."""
    for record in handle.header.records:
        if record.key == "reference":
            return str(record.value)
    return None
