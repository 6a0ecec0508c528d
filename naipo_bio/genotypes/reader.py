"""Reading genotypes of a VCF/BCF region in blocks of records.

pysam opens the file, checks the header and index, and fetches the region.
Bgzipped VCF text is inflated from the record the tabix index points to; BCF
records are decoded from their binary encoding (``bcf``). The sample columns
of a block of records are decoded in bulk by the numba kernels, so no Python
loop runs over samples.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pysam

from naipo_bio.errors import InputError
from naipo_bio.genotypes import _dosage, _parse
from naipo_bio.genotypes.bcf import BcfRegion, header_keys
from naipo_bio.io.bgzf import BgzfReader
from naipo_bio.io.genome import canonical_contig, check_build
from naipo_bio.io.somatic import annotation_format
from naipo_bio.io.vcf import header_contigs, open_variant_file

log = logging.getLogger(__name__)

#: Records per decoded block; about 40 MB of buffers at 5,000 samples.
BLOCK_RECORDS = 256

#: Bytes of decompressed VCF text read at a time by the byte-stream reader.
STREAM_CHUNK = 8 << 20

SOURCES = {"GT": _dosage.SOURCE_GT, "DS": _dosage.SOURCE_DS, "GP": _dosage.SOURCE_GP}

PARSE_PROBLEMS = {
    _parse.PARSE_WRONG_SAMPLE_COUNT: "does not have {n_samples} sample columns",
    _parse.PARSE_PLOIDY: (
        "has a genotype with more than two alleles (only haploid and diploid calls "
        "are supported)"
    ),
    _parse.PARSE_BAD_NUMBER: "has a GT, DS or GP value that is not a number",
}


@dataclass(frozen=True)
class Region:
    """A 1-based, inclusive range of record start positions on one contig."""

    contig: str
    start: int
    end: int

    @property
    def name(self) -> str:
        return f"{self.contig}_{self.start}_{self.end}"


@dataclass
class GenotypeOptions:
    """How calls become dosages (see docs/genotypes.md)."""

    dosage_field: str = "auto"  # auto, GT, DS or GP
    half_call: str = "missing"  # missing or carrier
    haploid_alt: int = 1  # dosage of a haploid ALT call: 1 or 2
    filters: frozenset[str] = frozenset({"PASS"})
    annotation: str = "auto"  # CSQ, ANN, auto or none


@dataclass
class VariantBlock:
    """Biallelic tests (one per usable ALT) of a block of records.

    ``dosage`` is (t, n) over the selected samples, NaN where missing;
    ``counts`` is (t, N_COUNTS) with the columns named in ``_dosage``.
    """

    contig: list[str]
    pos: np.ndarray
    ref: list[str]
    alt: list[str]
    alts: list[list[str]]  # every ALT of the source record
    alt_index: list[int]  # 1-based index of ``alt`` among ``alts``
    annotation: list[str | None]
    dosage: np.ndarray
    counts: np.ndarray
    haploid_samples: np.ndarray  # (n,) haploid calls per selected sample


@dataclass
class RawBlock:
    """Records of one block with their decoded alleles, DS and GP values."""

    records: list[list[str]]
    alleles: np.ndarray  # (m, samples, 2) int16
    ds: np.ndarray  # (m, samples, k_max) float32
    gp: np.ndarray  # (m, samples, k_max) float32
    source: np.ndarray  # (m,) dosage source per record
    placeholder: np.ndarray  # (m, samples) bool


@dataclass
class ReadStats:
    """Counts of records and alleles read and skipped (site-level aggregates)."""

    records: int = 0
    filtered: int = 0
    symbolic_alleles: int = 0
    star_alleles: int = 0
    tests: int = 0
    half_calls: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def add(self, other: ReadStats) -> None:
        for name in (
            "records",
            "filtered",
            "symbolic_alleles",
            "star_alleles",
            "tests",
            "half_calls",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class GenotypeFile:
    """A VCF/BCF opened for region reads.

    Parameters
    ----------
    path : path of a VCF, bgzipped VCF (with .tbi or .csi index) or BCF (.csi).
    build : declared genome build, checked against the header's contig lengths.
    """

    def __init__(self, path: str | Path, build: str | None, options: GenotypeOptions):
        self.path = Path(path)
        self.options = options
        handle = open_variant_file(self.path, "genotype VCF")
        self.samples = list(handle.header.samples)
        self.contigs = check_build(header_contigs(handle), build, str(self.path))
        self.header_lengths = header_contigs(handle)
        self.is_bcf = handle.is_bcf
        self.compressed = str(self.path).endswith((".gz", ".bgz")) or self.is_bcf
        self.annotation_key = self._annotation_key(handle)
        self.annotation_fields: list[str] = []
        if self.annotation_key is not None:
            _, self.annotation_fields = annotation_format(
                handle, self.path, self.annotation_key
            )
        self.index_contigs = self._index_contigs(handle)
        if self.is_bcf:
            self._bcf = BcfRegion(
                self.path,
                header_keys(handle.header, self.annotation_key),
                self.annotation_key,
            )
        handle.close()

    def _annotation_key(self, handle) -> str | None:
        if self.options.annotation == "none":
            return None
        for key in (
            ("CSQ", "ANN")
            if self.options.annotation == "auto"
            else (self.options.annotation,)
        ):
            if key in handle.header.info:
                return key
        return None

    def _index_contigs(self, handle) -> list[str] | None:
        if not self.compressed:
            return None
        if handle.index is None:
            kind = (
                "bcftools index" if self.is_bcf else "tabix -p vcf (or bcftools index)"
            )
            raise InputError(
                f"{self.path}: no index found (.tbi or .csi next to the file). "
                f"Index it with {kind}; region reads and chunked runs need it."
            )
        return list(handle.index.keys())

    def regions(self, chunk_size: int) -> list[Region]:
        """Chunks of at most ``chunk_size`` bp over the contigs that have records.

        Contig lengths come from the header; a contig without a declared length
        becomes one chunk. A plain (uncompressed) VCF is one chunk per contig
        that has records, read sequentially. A record beyond its contig's
        declared length stops the run, since no chunk would read it.
        """
        if self.index_contigs is not None:
            names = self.index_contigs
            last = self._last_positions_indexed(names)
        else:
            last = self._last_positions_plain()
            names = list(last)
        for contig, pos in last.items():
            length = self.header_lengths.get(contig)
            if length and pos > length:
                raise InputError(
                    f"{self.path}: a record at {contig}:{pos:,} lies beyond the "
                    f"contig's length in the header ({length:,}). The header does "
                    "not describe these records (another build, or a damaged "
                    "header); fix its ##contig lines."
                )
        regions = []
        for contig in names:
            length = self.header_lengths.get(contig)
            if not length or chunk_size <= 0 or not self.compressed:
                regions.append(Region(contig, 1, 2**31 - 1))
                continue
            for start in range(1, length + 1, chunk_size):
                regions.append(
                    Region(contig, start, min(start + chunk_size - 1, length))
                )
        return regions

    def _last_positions_indexed(self, names: list[str]) -> dict[str, int]:
        """For each contig, a position beyond its header length if the index
        finds a record there (else 0)."""
        last = {}
        with pysam.VariantFile(str(self.path)) as handle:
            for contig in names:
                length = self.header_lengths.get(contig)
                last[contig] = 0
                if not length:
                    continue
                for record in handle.fetch(contig, length):
                    if record.pos > length:
                        last[contig] = record.pos
                        break
        return last

    def _last_positions_plain(self) -> dict[str, int]:
        """Largest position of each contig of a plain VCF, in file order."""
        last: dict[str, int] = {}
        with open(self.path, "rb") as handle:
            for line in handle:
                if line.startswith(b"#"):
                    continue
                fields = line.split(b"\t", 2)
                if len(fields) < 2 or not fields[1].strip().isdigit():
                    continue  # reported with its record by the parser
                contig = fields[0].decode("ascii", "replace")
                last[contig] = max(last.get(contig, 0), int(fields[1]))
        return last

    def blocks(
        self,
        region: Region,
        columns: np.ndarray,
        stats: ReadStats | None = None,
        impute: bool = False,
    ) -> Iterator[VariantBlock]:
        """Decode the region in blocks, for the samples at positions ``columns``.

        With ``impute``, missing dosages are replaced by the mean of the called
        ones (the counts still describe the calls).
        """
        stats = stats if stats is not None else ReadStats()
        for raw in self.raw_blocks(region, stats, columns):
            yield self.finish(raw, stats, impute)

    def raw_blocks(
        self, region: Region, stats: ReadStats, columns: np.ndarray | None = None
    ) -> Iterator[RawBlock]:
        """Parse the region's records in blocks, without computing dosages.

        Only the samples at positions ``columns`` (all samples by default) are
        kept, in that order. Uses no parallel kernel, so it can run in a reader
        thread while another thread runs the parallel ones.
        """
        target = np.full(len(self.samples), -1, dtype=np.int64)
        if columns is None:
            columns = np.arange(len(self.samples))
        target[columns] = np.arange(len(columns))
        blocks = (
            self._bcf_blocks(region, stats, target)
            if self.is_bcf
            else self._stream_blocks(region, stats, target)
        )
        for raw in blocks:
            self._check_values(raw, columns)
            yield raw

    def _check_values(self, raw: RawBlock, columns: np.ndarray) -> None:
        """Reject GT allele indexes beyond the ALT alleles and dosages outside
        [0, 2], naming the record, sample and value."""
        n_alt = np.array(
            [
                len(fields[4].split(",")) if fields[4] != "." else 0
                for fields in raw.records
            ],
            dtype=np.int64,
        )
        r, s, code = _parse.check_values(
            raw.alleles, raw.ds, raw.gp, raw.source, n_alt,
            _dosage.SOURCE_DS, _dosage.SOURCE_GP,
        )  # fmt: skip
        if code == _parse.VALUE_OK:
            return
        fields = raw.records[r]
        sample = self.samples[int(columns[s])]
        if code == _parse.VALUE_ALLELE:
            call = "/".join(str(int(a)) for a in raw.alleles[r, s] if a >= 0)
            problem = (
                f"a GT allele index above its {n_alt[r]} ALT allele(s) for sample "
                f"{sample!r} (alleles {call})"
            )
        else:
            values = raw.ds if raw.source[r] == _dosage.SOURCE_DS else raw.gp
            name = "DS" if raw.source[r] == _dosage.SOURCE_DS else "GP"
            dosages_text = ", ".join(
                f"{v:.4g}" for v in values[r, s, : max(n_alt[r], 1)]
            )
            problem = (
                f"a {name} dosage outside [0, 2] for sample {sample!r} ({dosages_text})"
            )
        raise InputError(
            f"{self.path}: record {fields[0]}:{fields[1]} has {problem}. Fix or "
            "remove the record."
        )

    def _bcf_blocks(
        self, region: Region, stats: ReadStats, target: np.ndarray
    ) -> Iterator[RawBlock]:
        # A block ends only where the position changes, so records split from
        # one multi-allelic record always stay in one block.
        for block in self._bcf.blocks(
            region.contig, region.start, region.end, target, BLOCK_RECORDS
        ):
            stats.records += len(block.records)
            self._raise_parse_problem(block.records, block.status, block.bad_sample)
            source = np.array(
                [
                    self._source(*(0 if p else -1 for p in present), record)
                    for present, record in zip(
                        block.present.tolist(), block.records, strict=True
                    )
                ],
                dtype=np.int64,
            )
            placeholder = self._split_placeholders(block.records, block.alleles)
            yield RawBlock(
                block.records, block.alleles, block.ds, block.gp, source, placeholder
            )

    def _stream_blocks(
        self, region: Region, stats: ReadStats, target: np.ndarray
    ) -> Iterator[RawBlock]:
        """Blocks of a VCF region read as decompressed bytes.

        Sample columns are parsed where they lie in the read buffer, so no
        per-record string of the samples is ever built. For a bgzipped file,
        the tabix index finds the region's first record; its virtual offset
        then starts a plain BGZF stream.
        """
        first_line, handle = self._open_stream(region)
        if handle is None:
            return
        carry = first_line.encode("ascii", "replace")
        last_pos = -1
        finished = False
        try:
            while not finished:
                chunk = handle.read(STREAM_CHUNK)
                at_end = not chunk
                data = carry + chunk
                if at_end and data and not data.endswith(b"\n"):
                    data += b"\n"
                buffer = np.frombuffer(data, dtype=np.uint8)
                line_start, sample_start, line_end = _parse.scan_lines(buffer)
                count = line_start.size
                records: list[list[str]] = []
                keep: list[int] = []
                group_start = 0  # first kept line of the trailing position group
                for i in range(count):
                    meta_end = max(sample_start[i] - 1, line_start[i])
                    if sample_start[i] == line_end[i]:
                        meta_end = line_end[i]
                    meta = data[line_start[i] : meta_end].decode("ascii", "replace")
                    if meta.startswith("#") or not meta:
                        continue
                    fields = meta.split("\t")
                    if fields[0] != region.contig:
                        if self.compressed:
                            finished = True
                            break
                        continue
                    if len(fields) < 8 or (self.samples and len(fields) < 9):
                        raise InputError(
                            f"{self.path}: record {':'.join(fields[:2])} has "
                            f"{len(fields)} columns before the samples; the header "
                            f"names {len(self.samples)} samples."
                        )
                    pos = int(fields[1])
                    if pos > region.end:
                        if self.compressed:
                            finished = True
                            break
                        continue
                    if pos < region.start:
                        continue
                    if pos < last_pos:
                        raise InputError(
                            f"{self.path}: records are not sorted by position "
                            f"({fields[0]}:{pos} follows position {last_pos}). Sort "
                            "with 'bcftools sort' and index the result."
                        )
                    if pos != last_pos:
                        group_start = len(keep)
                    last_pos = pos
                    records.append(fields)
                    keep.append(i)
                if finished or at_end:
                    cut = len(keep)
                    carry = b""
                else:
                    # Records of the last position may continue in the next
                    # chunk (split multi-allelic records): carry them over with
                    # the unfinished line.
                    cut = group_start
                    tail = (
                        line_start[keep[cut]]
                        if cut < len(keep)
                        else (line_end[count - 1] + 1 if count else 0)
                    )
                    carry = data[tail:]
                    if cut < len(keep):
                        last_pos = -1 if cut == 0 else int(records[cut - 1][1])
                if cut:
                    rows = np.array(keep[:cut], dtype=np.int64)
                    stats.records += cut
                    yield self._parse(
                        records[:cut],
                        target,
                        buffer,
                        sample_start[rows],
                        line_end[rows],
                    )
                if at_end:
                    finished = True
        finally:
            handle.close()

    def _open_stream(self, region: Region):
        """The region's first line and a binary stream positioned after it."""
        if not self.compressed:
            handle = open(self.path, "rb")  # noqa: SIM115 (closed by the caller)
            return "", handle
        index = None
        for suffix in (".tbi", ".csi"):
            if Path(str(self.path) + suffix).exists():
                index = str(self.path) + suffix
                break
        tabix = pysam.TabixFile(str(self.path), index=index)
        try:
            if region.contig not in tabix.contigs:
                return "", None
            for line in tabix.fetch(region.contig, region.start - 1, region.end):
                if int(line.split("\t", 2)[1]) >= region.start:
                    offset = tabix.tell()
                    break
            else:
                return "", None
        finally:
            tabix.close()
        return line + "\n", BgzfReader(self.path, offset)

    def _parse(
        self,
        records: list[list[str]],
        target: np.ndarray,
        buffer: np.ndarray | None = None,
        starts: np.ndarray | None = None,
        ends: np.ndarray | None = None,
    ) -> RawBlock:
        """Decode a block of records.

        ``records`` holds each record's first nine columns. The sample columns
        are either the tenth element of each record (text lines) or, for the
        byte-stream reader, ``buffer[starts[r]:ends[r]]``. ``target`` gives
        each sample's output position (-1: not kept).
        """
        m = len(records)
        n_samples = len(self.samples)
        n_alt = np.empty(m, dtype=np.int64)
        gt_index = np.full(m, -1, dtype=np.int64)
        ds_index = np.full(m, -1, dtype=np.int64)
        gp_index = np.full(m, -1, dtype=np.int64)
        source = np.zeros(m, dtype=np.int64)
        format_cache: dict[str, tuple[int, int, int]] = {}
        for r, fields in enumerate(records):
            alts = fields[4].split(",") if fields[4] != "." else []
            n_alt[r] = max(len(alts), 1)
            keys = format_cache.get(fields[8]) if len(fields) > 8 else (-1, -1, -1)
            if keys is None:
                names = fields[8].split(":")
                keys = tuple(
                    names.index(k) if k in names else -1 for k in ("GT", "DS", "GP")
                )
                format_cache[fields[8]] = keys
            gt_index[r], ds_index[r], gp_index[r] = keys
            source[r] = self._source(gt_index[r], ds_index[r], gp_index[r], fields)
        k_max = int(n_alt.max()) if m else 1
        if buffer is None:
            text = "".join((f[9] if len(f) > 9 else "") + "\n" for f in records)
            buffer = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8)
            lengths = np.array([len(f[9]) if len(f) > 9 else 0 for f in records])
            bounds = np.concatenate(([0], np.cumsum(lengths + 1))).astype(np.int64)
            starts = bounds[:-1]
            ends = bounds[1:] - 1
        n_out = int(np.count_nonzero(target >= 0))
        alleles, ds, gp, status, bad_sample = _parse.block_outputs(m, n_out, k_max)
        _parse.parse_block(
            buffer, starts, ends, gt_index, ds_index, gp_index, n_alt, n_samples,
            target, alleles, ds, gp, status, bad_sample,
        )  # fmt: skip
        self._raise_parse_problem(records, status, bad_sample)
        placeholder = self._split_placeholders(records, alleles)
        return RawBlock(records, alleles, ds, gp, source, placeholder)

    def _raise_parse_problem(
        self, records: list[list[str]], status: np.ndarray, bad_sample: np.ndarray
    ):
        bad = np.flatnonzero(status != _parse.PARSE_OK)
        if bad.size:
            r = int(bad[0])
            problem = PARSE_PROBLEMS[int(status[r])].format(n_samples=len(self.samples))
            if bad_sample[r] >= 0:
                problem += f" (sample {self.samples[int(bad_sample[r])]!r})"
            raise InputError(
                f"{self.path}: record {records[r][0]}:{records[r][1]} {problem}. "
                "Fix or remove it."
            )

    def finish(
        self, raw: RawBlock, stats: ReadStats, impute: bool = False
    ) -> VariantBlock:
        """Select the usable ALTs of a parsed block and compute their dosages
        for the samples the block was parsed for, in that order."""
        records = raw.records
        alleles = raw.alleles
        columns = np.arange(alleles.shape[1], dtype=np.int64)
        m = len(records)
        test_record, test_alt = [], []
        contig, pos, ref, alt, annotation = [], [], [], [], []
        record_alts: list[list[str]] = []
        for r, fields in enumerate(records):
            filters = fields[6]
            if filters not in (".", "") and not set(filters.split(";")) <= (
                self.options.filters
            ):
                stats.filtered += 1
                continue
            note = None
            if self.annotation_key:
                note = _info_value(fields[7], self.annotation_key)
            alts = fields[4].split(",")
            for k, allele in enumerate(alts, start=1):
                if allele == "*":
                    stats.star_alleles += 1
                    continue
                if _symbolic(allele):
                    stats.symbolic_alleles += 1
                    continue
                test_record.append(r)
                test_alt.append(k)
                contig.append(canonical_contig(fields[0]))
                pos.append(int(fields[1]))
                ref.append(fields[3])
                alt.append(allele)
                record_alts.append(alts)
                annotation.append(note)
        t = len(test_record)
        half_policy = (
            _dosage.HALF_CARRIER
            if self.options.half_call == "carrier"
            else _dosage.HALF_MISSING
        )
        dosage = np.empty((t, columns.shape[0]), dtype=np.float64)
        counts = np.empty((t, _dosage.N_COUNTS), dtype=np.float64)
        if t:
            _dosage.dosages(
                alleles, raw.ds, raw.gp, np.array(test_record, dtype=np.int64),
                np.array(test_alt, dtype=np.int64), raw.source, raw.placeholder,
                columns, half_policy, float(self.options.haploid_alt), impute,
                dosage, counts,
            )  # fmt: skip
        stats.tests += t
        stats.half_calls += int(counts[:, _dosage.COUNT_HALF].sum()) if t else 0
        # Haploid calls per sample matter only for the chrX check against sex.
        if m and contig and contig[0] == "X":
            haploid = (
                (alleles[:, :, 1] == _parse.ABSENT) & (alleles[:, :, 0] >= 0)
            ).sum(axis=0)
        else:
            haploid = np.zeros(columns.shape[0])
        return VariantBlock(
            contig, np.array(pos, dtype=np.int64), ref, alt, record_alts, test_alt,
            annotation, dosage, counts, haploid.astype(np.int64),
        )  # fmt: skip

    def _source(self, gt: int, ds: int, gp: int, fields: list[str]) -> int:
        wanted = self.options.dosage_field
        if wanted == "auto":
            if ds >= 0:
                return _dosage.SOURCE_DS
            if gp >= 0:
                return _dosage.SOURCE_GP
            return _dosage.SOURCE_GT
        index = {"GT": gt, "DS": ds, "GP": gp}[wanted]
        if index < 0:
            raise InputError(
                f"{self.path}: record {fields[0]}:{fields[1]} has no {wanted} field, "
                f"but dosage_field is {wanted}. Use dosage_field: auto to fall back."
            )
        return SOURCES[wanted]

    @staticmethod
    def _split_placeholders(
        records: list[list[str]], alleles: np.ndarray
    ) -> np.ndarray:
        """Mark "." alleles that stand for another ALT in pre-split records.

        Consecutive biallelic records with the same CHROM, POS and REF come from
        one multi-allelic record. A sample's "." there is a real no-call only if
        the sample has no observed allele in any record of the group.
        """
        m, n, _ = alleles.shape
        placeholder = np.zeros((m, n), dtype=np.bool_)
        r = 0
        while r < m:
            end = r + 1
            while (
                end < m
                and records[end][0] == records[r][0]
                and records[end][1] == records[r][1]
                and records[end][3] == records[r][3]
            ):
                end += 1
            if end - r > 1:
                observed = (alleles[r:end] >= 0).any(axis=(0, 2))
                placeholder[r:end] = observed[None, :]
            r = end
        return placeholder


def _symbolic(allele: str) -> bool:
    """Symbolic (<DEL>), breakend (N[chr1:10[) or missing (".") ALT alleles."""
    return allele.startswith("<") or allele == "." or "[" in allele or "]" in allele


def _info_value(info: str, key: str) -> str | None:
    for item in info.split(";"):
        if item.startswith(key + "="):
            return item[len(key) + 1 :]
    return None
