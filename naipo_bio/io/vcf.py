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
    with open(path, "rb") as raw:
        start = raw.read(14)
    if start[:2] == b"\x1f\x8b" and start[12:14] != b"BC":
        raise InputError(
            f"The {what} file {path} is compressed with plain gzip, not bgzip, so it "
            "cannot be indexed or read by region. Recompress it: zcat FILE | bgzip "
            "> FILE.vcf.gz, then index it with tabix -p vcf."
        )
    try:
        handle = pysam.VariantFile(str(path))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"htslib could not open the {what} file {path}: {exc}. Validate it with "
            "'bcftools view -h'."
        ) from None
    return handle


def checked_records(handle: pysam.VariantFile, path: Path, what: str = "VCF"):
    """Iterate the records of ``handle``; a record htslib cannot parse stops
    with an error naming the file and the last record read."""
    last = None
    iterator = iter(handle)
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            return
        except (OSError, ValueError) as exc:
            where = f"after record {last}" if last else "at its first record"
            raise InputError(
                f"The {what} file {path} cannot be read {where} ({exc}): a record "
                "is malformed (wrong number of columns, a broken GT) or the file is "
                "cut short. Check it with 'bcftools view' and fix or remove the "
                "record."
            ) from None
        last = f"{record.chrom}:{record.pos}"
        yield record


def header_contigs(handle: pysam.VariantFile) -> dict[str, int | None]:
    """Contig names of the header with their declared lengths (None if absent)."""
    return {name: contig.length for name, contig in handle.header.contigs.items()}


def reference_build_hint(handle: pysam.VariantFile) -> str | None:
    """Value of a ##reference header line, if any."""
    for record in handle.header.records:
        if record.key == "reference":
            return str(record.value)
    return None
