"""The binary BCF decoder gives what the VCF text path gives, record for record."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pysam
import pysam.bcftools
import pytest

from naipo_bio.errors import InputError
from naipo_bio.genotypes import bcf as bcf_module
from naipo_bio.genotypes import reader as reader_module
from naipo_bio.genotypes.reader import GenotypeFile, GenotypeOptions
from naipo_bio.io.bgzf import BgzfReader

HEADER = (
    "##fileformat=VCFv4.2\n"
    "##contig=<ID=1,length=2000000>\n##contig=<ID=2,length=1000000>\n"
    "##contig=<ID=X,length=3000000>\n"
    '##FILTER=<ID=LowQual,Description="low quality">\n'
    '##FILTER=<ID=LowDP,Description="low depth">\n'
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">\n'
    "##INFO=<ID=CSQ,Number=.,Type=String,"
    'Description="Consequences. Format: Allele|Consequence|SYMBOL">\n'
    '##INFO=<ID=AF,Number=A,Type=Float,Description="frequency">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="depths">\n'
    '##FORMAT=<ID=DS,Number=A,Type=Float,Description="Dosage">\n'
    '##FORMAT=<ID=GP,Number=G,Type=Float,Description="Genotype probabilities">\n'
)


def random_gt(rng, n_alt, haploid):
    def allele():
        return "." if rng.random() < 0.05 else str(rng.integers(0, n_alt + 1))

    if haploid:
        return allele()
    return allele() + ("|" if rng.random() < 0.5 else "/") + allele()


def random_sample(rng, keys, n_alt, haploid):
    values = []
    for key in keys:
        if key == "GT":
            values.append(random_gt(rng, n_alt, haploid))
        elif key == "AD":
            values.append(",".join(str(rng.integers(0, 30)) for _ in range(n_alt + 1)))
        elif key == "DS":
            values.append(
                "."
                if rng.random() < 0.05
                else ",".join(f"{rng.random() * 2:.3f}" for _ in range(n_alt))
            )
        elif key == "GP":
            n_gp = (n_alt + 1) * (n_alt + 2) // 2
            p = rng.dirichlet(np.ones(n_gp))
            values.append(
                "." if rng.random() < 0.05 else ",".join(f"{v:.4f}" for v in p)
            )
    if rng.random() < 0.02:
        return "."  # the whole sample missing
    return ":".join(values)


def random_vcf(path, n_samples=37, seed=3):
    """Records on three contigs with every feature the decoder handles."""
    rng = np.random.default_rng(seed)
    samples = [f"S{i}" for i in range(n_samples)]
    lines = [
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples)
    ]
    formats = ["GT", "GT:AD", "GT:DS", "GT:GP", "DS:GT", "GP", "GT:AD:DS:GP"]
    for contig, length in (("1", 2_000_000), ("2", 1_000_000), ("X", 3_000_000)):
        positions = np.sort(rng.choice(np.arange(1, length - 10), 180, replace=False))
        for pos in positions:
            copies = 3 if rng.random() < 0.1 else 1  # pre-split multi-allelic
            n_alt = 1 if copies > 1 else int(rng.choice([1, 1, 1, 2, 3]))
            alts = ["G", "T", "C"][:n_alt]
            if rng.random() < 0.03:
                alts[-1] = rng.choice(["*", "<DEL>"])
            keys = formats[rng.integers(len(formats))].split(":")
            filt = rng.choice(["PASS", ".", "LowQual", "LowQual;LowDP"])
            info = "."
            if rng.random() < 0.5:
                info = f"DP={rng.integers(1, 500)};CSQ=G|missense_variant|GENE{pos % 7}"
            haploid = contig == "X" and pos > 2_700_000
            for c in range(copies):
                alt = ["G", "T", "C"][c] if copies > 1 else ",".join(alts)
                calls = [
                    random_sample(rng, keys, len(alt.split(",")), haploid)
                    for _ in samples
                ]
                lines.append(
                    f"{contig}\t{pos}\trs{pos}\tA\t{alt}\t50\t{filt}\t{info}\t"
                    + ":".join(keys)
                    + "\t"
                    + "\t".join(calls)
                )
        if contig == "2":
            # Seventy ALT alleles: GT needs 16-bit integers in BCF.
            many = ",".join(f"A{'C' * k}" for k in range(1, 71))
            calls = [f"{rng.integers(0, 71)}/{rng.integers(0, 71)}" for _ in samples]
            lines.append(
                f"2\t{length - 1}\t.\tA\t{many}\t.\tPASS\t.\tGT\t" + "\t".join(calls)
            )
    path.write_text(HEADER + "\n".join(lines) + "\n")


def both_files(tmp_path, **kwargs):
    plain = tmp_path / "random.vcf"
    random_vcf(plain, **kwargs)
    gz = pysam.tabix_index(str(plain), preset="vcf", force=True, keep_original=True)
    bcf = tmp_path / "random.bcf"
    pysam.bcftools.view("-Ob", "-o", str(bcf), gz, catch_stdout=False)
    pysam.bcftools.index(str(bcf))
    return gz, str(bcf)


def decode_all(path, chunk, columns=None, options=None):
    gfile = GenotypeFile(path, None, options or GenotypeOptions())
    columns = np.arange(len(gfile.samples)) if columns is None else columns
    out = []
    for region in gfile.regions(chunk):
        for block in gfile.blocks(region, columns):
            out.append(block)
    return out


def assert_same_blocks(expected, actual):
    flat = [
        (b.contig, b.pos.tolist(), b.ref, b.alt, b.alts, b.alt_index, b.annotation)
        for b in expected
    ]
    assert flat == [
        (b.contig, b.pos.tolist(), b.ref, b.alt, b.alts, b.alt_index, b.annotation)
        for b in actual
    ]
    for x, y in zip(expected, actual, strict=True):
        # BCF stores GP as float32, so GP dosages sum rounded probabilities;
        # every other value is the same to the bit.
        np.testing.assert_allclose(x.dosage, y.dosage, rtol=0, atol=1e-6)
        np.testing.assert_allclose(x.counts, y.counts, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(x.haploid_samples, y.haploid_samples)


@pytest.mark.parametrize("chunk", [0, 250_000])
def test_bcf_equals_vcf_text(tmp_path, chunk):
    gz, bcf = both_files(tmp_path)
    expected = decode_all(gz, chunk)
    assert sum(len(b.pos) for b in expected) > 500
    assert_same_blocks(expected, decode_all(bcf, chunk))


@pytest.mark.parametrize(
    "options",
    [
        GenotypeOptions(half_call="carrier"),
        GenotypeOptions(dosage_field="auto", filters=frozenset({"PASS", "LowQual"})),
        GenotypeOptions(haploid_alt=2, annotation="none"),
    ],
)
def test_bcf_equals_vcf_text_under_options(tmp_path, options):
    gz, bcf = both_files(tmp_path, seed=11)
    columns = np.array([30, 2, 7, 19, 0])
    assert_same_blocks(
        decode_all(gz, 300_000, columns, options),
        decode_all(bcf, 300_000, columns, options),
    )


def test_bcf_missing_dosage_field_gives_the_text_error(tmp_path):
    gz, bcf = both_files(tmp_path, seed=11)
    messages = []
    for path in (gz, bcf):
        with pytest.raises(InputError, match="has no GT field") as info:
            decode_all(path, 0, options=GenotypeOptions(dosage_field="GT"))
        messages.append(str(info.value).split(": ", 1)[1])
    assert messages[0] == messages[1]


def test_bcf_reads_across_small_buffers(tmp_path, monkeypatch):
    """Records and position groups cut by the read buffer and small blocks."""
    gz, bcf = both_files(tmp_path, n_samples=5, seed=5)
    expected = decode_all(gz, 0)
    monkeypatch.setattr(bcf_module, "STREAM_CHUNK", 700)
    monkeypatch.setattr(reader_module, "BLOCK_RECORDS", 3)
    actual = decode_all(bcf, 0)
    assert len(actual) > len(expected)
    for field in ("pos", "dosage", "counts"):
        np.testing.assert_allclose(
            np.concatenate([getattr(b, field) for b in expected]),
            np.concatenate([getattr(b, field) for b in actual]),
            rtol=0,
            atol=1e-5,
        )


def test_region_start_from_csi_skips_earlier_records(tmp_path):
    _, bcf = both_files(tmp_path, seed=2)
    gfile = GenotypeFile(bcf, None, GenotypeOptions())
    whole = decode_all(bcf, 0)
    on_2 = [p for b in whole if b.contig[:1] == ["2"] for p in b.pos.tolist()]
    region = reader_module.Region("2", 400_000, 700_000)
    got = [
        p for b in gfile.blocks(region, np.arange(len(gfile.samples))) for p in b.pos
    ]
    assert got == [p for p in on_2 if 400_000 <= p <= 700_000]
    start = gfile._bcf._start
    assert (
        start("2", 400_000, 700_000) > start("2", 1, 1_000_000) > start("1", 1, 10**6)
    )
    assert start("1", 1, 10) is None  # no record there


def read_whole(path):
    with BgzfReader(path) as reader:
        while reader.read(1 << 16):
            pass


def test_truncated_bcf_names_the_file(tmp_path):
    _, bcf = both_files(tmp_path, seed=4)
    data = open(bcf, "rb").read()
    cut = tmp_path / "cut.bcf"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match="cut.bcf.*(truncated|cut short)"):
        read_whole(cut)


def test_damaged_bgzf_member_fails_its_check(tmp_path):
    _, bcf = both_files(tmp_path, seed=4)
    data = bytearray(open(bcf, "rb").read())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.bcf"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="bad.bcf.*BGZF block at byte"):
        read_whole(bad)


def test_bgzf_reads_like_htslib_from_offset(tmp_path):
    gz, _ = both_files(tmp_path, seed=6)
    with pysam.TabixFile(gz) as tabix:
        next(tabix.fetch("2"))
        offset = tabix.tell()
    expected = pysam.libcbgzf.BGZFile(gz, "rb")
    expected.seek(offset)
    with BgzfReader(gz, offset) as reader:
        assert reader.read(12_345) == expected.read(12_345)
        assert reader.read(10**9) == expected.read(10**9)
        assert reader.read(10) == b""
    expected.close()


def first_record(bcf):
    """Inflated bytes of a BCF and the offset of its first record."""
    with gzip.open(bcf, "rb") as handle:
        data = bytearray(handle.read())
    (l_text,) = struct.unpack_from("<I", data, 5)
    return data, 9 + l_text


def test_malformed_bcf_record_named(tmp_path):
    _, bcf = both_files(tmp_path, n_samples=4, seed=8)
    data, first = first_record(bcf)
    (l_shared,) = struct.unpack_from("<I", data, first)
    indiv = first + 8 + l_shared
    assert data[indiv] == 0x11  # the FORMAT key: one 8-bit integer
    data[indiv] = 0x15  # now a float, which no key can be
    region = GenotypeFile(bcf, None, GenotypeOptions())._bcf
    buffer = np.frombuffer(bytes(data[first:]), dtype=np.uint8)
    with pytest.raises(InputError, match="random.bcf: the BCF record .* is malformed"):
        region._scan(buffer, True, -1)


def test_bcf_gt_of_characters_rejected(tmp_path):
    """GT values typed as characters: htslib indexes the file, the decoder
    rejects the record by position."""
    _, bcf = both_files(tmp_path, n_samples=4, seed=8)
    data, first = first_record(bcf)
    (l_shared,) = struct.unpack_from("<I", data, first)
    (pos,) = struct.unpack_from("<i", data, first + 12)
    indiv = first + 8 + l_shared
    with pysam.VariantFile(bcf) as handle:
        gt = handle.header.formats["GT"].id
    assert data[indiv : indiv + 3] == bytes([0x11, gt, 0x21])  # key GT, two int8
    data[indiv + 2] = 0x27  # two characters
    broken = tmp_path / "broken.bcf"
    with pysam.libcbgzf.BGZFile(str(broken), "wb") as sink:
        sink.write(bytes(data))
    pysam.bcftools.index(str(broken))
    with pytest.raises(InputError, match=f"broken.bcf: record 1:{pos + 1} has a GT"):
        decode_all(str(broken), 0)
