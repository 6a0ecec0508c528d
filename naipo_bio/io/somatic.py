"""Gene-level somatic mutation status from an annotated VCF/BCF or a MAF.

A gene is mutated in a sample when the sample carries an ALT allele whose
annotation for that gene includes one of the configured consequence terms. The
terms are Sequence Ontology terms as VEP and SnpEff write them. For a MAF, the
configured Variant_Classification values decide instead.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from naipo_bio.errors import InputError
from naipo_bio.io.genome import check_build
from naipo_bio.io.ids import check_unique_samples
from naipo_bio.io.tables import is_missing, require_columns
from naipo_bio.io.vcf import checked_records, header_contigs, open_variant_file

log = logging.getLogger(__name__)

#: INFO field -> (allele, consequence, gene symbol, gene id) sub-field names.
ANNOTATION_FIELDS = {
    "CSQ": ("Allele", "Consequence", "SYMBOL", "Gene"),
    "ANN": ("Allele", "Annotation", "Gene_Name", "Gene_ID"),
}

#: NCBI_Build spellings in MAF files, by build.
MAF_BUILDS = {
    "GRCh37": {"37", "GRCh37", "hg19", "GRCh37-lite"},
    "GRCh38": {"38", "GRCh38", "hg38"},
}


@dataclass
class GeneStatus:
    """Mutation status of genes (rows) in samples (columns): 1, 0, or NaN."""

    genes: list[str]
    samples: list[str]
    matrix: np.ndarray
    source: Path
    counts: dict[str, int] = field(default_factory=dict)


def read_somatic(
    somatic: dict[str, Any], mutation: dict[str, Any], build: str | None
) -> GeneStatus:
    """Read the site's somatic input named in its configuration."""
    if "vcf" in somatic:
        return read_somatic_vcf(
            Path(somatic["vcf"]),
            consequences=set(mutation["consequences"]),
            filters=set(mutation["filters"]),
            gene_key=mutation["gene_key"],
            annotation=somatic.get("annotation", "auto"),
            missing_genotype=somatic.get("missing_genotype", "wildtype"),
            build=build,
        )
    return read_maf(
        Path(somatic["maf"]),
        classifications=set(mutation["maf_classifications"]),
        filters=set(mutation["filters"]),
        gene_key=mutation["gene_key"],
        samples_file=somatic.get("maf_samples"),
        build=build,
    )


def annotation_format(handle, path: Path, annotation: str) -> tuple[str, list[str]]:
    """Choose the annotation INFO field and return its sub-field names."""
    info = handle.header.info
    candidates = ["CSQ", "ANN"] if annotation == "auto" else [annotation]
    for key in candidates:
        if key in info:
            description = info[key].description or ""
            match = re.search(r"Format:\s*(.+)$", description)
            if match is None and ":" in description:
                match = re.search(r":\s*'?(.+?)'?\s*$", description)
            if match is None:
                raise InputError(
                    f"{path}: the {key} INFO header has no 'Format: ...' list of "
                    "sub-fields, so annotations cannot be parsed."
                )
            names = [n.strip().strip("'\" ") for n in match.group(1).split("|")]
            return key, names
    raise InputError(
        f"{path}: no {' or '.join(candidates)} INFO field in the header. Annotate the "
        "VCF with VEP (CSQ) or SnpEff (ANN), or give a MAF instead."
    )


def _allele_lookup(ref: str, alts: tuple[str, ...]) -> dict[str, int]:
    """Annotation allele string -> ALT index (1-based), both as written and as
    VEP writes it after trimming a first base shared by all alleles."""
    lookup = {alt: i + 1 for i, alt in enumerate(alts)}
    alleles = (ref, *alts)
    if all(len(a) > 0 for a in alleles) and len({a[0] for a in alleles}) == 1:
        if any(len(a) > 1 for a in alleles):
            for i, alt in enumerate(alts):
                lookup.setdefault(alt[1:] or "-", i + 1)
    return lookup


def read_somatic_vcf(
    path: Path,
    consequences: set[str],
    filters: set[str],
    gene_key: str,
    annotation: str = "auto",
    missing_genotype: str = "wildtype",
    build: str | None = None,
) -> GeneStatus:
    """Gene x sample mutation status from a VEP- or SnpEff-annotated VCF/BCF."""
    handle = open_variant_file(path, "somatic VCF")
    samples = list(handle.header.samples)
    if not samples:
        raise InputError(f"{path}: the somatic VCF has no sample columns.")
    check_build(header_contigs(handle), build, str(path))
    key, names = annotation_format(handle, path, annotation)
    allele_name, consequence_name, symbol_name, gene_id_name = ANNOTATION_FIELDS[key]
    gene_name = symbol_name if gene_key == "symbol" else gene_id_name
    for needed in (allele_name, consequence_name, gene_name):
        if needed not in names:
            raise InputError(
                f"{path}: the {key} annotation has no {needed!r} sub-field (it has "
                f"{names}). Re-annotate with that field, or set gene_key."
            )
    i_allele = names.index(allele_name)
    i_consequence = names.index(consequence_name)
    i_gene = names.index(gene_name)

    status: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    counts = dict.fromkeys(
        ("records", "filtered", "qualifying_records", "unmatched_annotation_alleles"), 0
    )
    n = len(samples)
    for record in checked_records(handle, path, "somatic VCF"):
        counts["records"] += 1
        record_filters = list(record.filter.keys())
        if record_filters and not set(record_filters) <= filters:
            counts["filtered"] += 1
            continue
        if key not in record.info or not record.alts:
            continue
        lookup = _allele_lookup(record.ref, record.alts)
        hits: dict[str, set[int]] = {}
        entries = record.info[key]
        if isinstance(entries, str):
            entries = (entries,)
        for entry in entries:
            parts = entry.split("|")
            if len(parts) <= max(i_allele, i_consequence, i_gene):
                continue
            terms = set(parts[i_consequence].split("&"))
            gene = parts[i_gene]
            if not gene or not terms & consequences:
                continue
            allele = lookup.get(parts[i_allele])
            if allele is None:
                if len(record.alts) != 1:
                    counts["unmatched_annotation_alleles"] += 1
                    continue
                allele = 1
            hits.setdefault(gene, set()).add(allele)
        if not hits:
            continue
        counts["qualifying_records"] += 1
        carriers: dict[int, np.ndarray] = {}
        absent = np.zeros(n, dtype=bool)
        genotypes = [sample["GT"] for sample in record.samples.values()]
        for s, gt in enumerate(genotypes):
            if gt is None or all(a is None for a in gt):
                absent[s] = True
        for alleles in hits.values():
            for allele in alleles:
                if allele not in carriers:
                    carriers[allele] = np.array(
                        [gt is not None and allele in gt for gt in genotypes]
                    )
        for gene, alleles in hits.items():
            row = status.setdefault(gene, np.zeros(n, dtype=bool))
            for allele in alleles:
                row |= carriers[allele]
            missing.setdefault(gene, np.zeros(n, dtype=bool))[...] |= absent
    handle.close()
    genes = sorted(status)
    matrix = np.zeros((len(genes), n))
    for i, gene in enumerate(genes):
        matrix[i] = status[gene]
        if missing_genotype == "missing":
            matrix[i, missing[gene] & ~status[gene]] = np.nan
    log.info(
        "%s: %d records, %d filtered, %d with a qualifying consequence, %d genes",
        path, counts["records"], counts["filtered"], counts["qualifying_records"],
        len(genes),
    )  # fmt: skip
    return GeneStatus(genes, samples, matrix, path, counts)


def read_maf(
    path: Path,
    classifications: set[str],
    filters: set[str],
    gene_key: str,
    samples_file: str | None = None,
    build: str | None = None,
) -> GeneStatus:
    """Gene x sample mutation status from a MAF (tab-separated, ``#`` comments)."""
    if not path.exists():
        raise InputError(f"The MAF file was not found: {path}")
    frame = _read_maf_table(path)
    gene_column = "Hugo_Symbol" if gene_key == "symbol" else "Gene"
    require_columns(
        frame,
        {"gene": gene_column, "classification": "Variant_Classification",
         "sample": "Tumor_Sample_Barcode"},
        path, "MAF",
    )  # fmt: skip
    if build is not None and "NCBI_Build" in frame.columns:
        declared = set(frame["NCBI_Build"].str.strip()) - {""}
        wrong = declared - MAF_BUILDS[build]
        if wrong:
            raise InputError(
                f"{path}: NCBI_Build is {sorted(wrong)}, but the analysis declares "
                f"{build}. Lift the MAF over or correct genome_build."
            )
    counts = {"records": int(frame.shape[0])}
    if "FILTER" in frame.columns:
        values = frame["FILTER"].str.strip()
        passed = values.isin(filters) | is_missing(frame["FILTER"])
        counts["filtered"] = int((~passed).sum())
        frame = frame.loc[passed]
    if samples_file is not None:
        listed = [
            line.strip() for line in Path(samples_file).read_text().splitlines()
            if line.strip()
        ]  # fmt: skip
        check_unique_samples(listed, samples_file, "sample list")
        unlisted = sorted(set(frame["Tumor_Sample_Barcode"]) - set(listed))
        if unlisted:
            raise InputError(
                f"{path}: sample(s) {unlisted[:10]} have mutations but are not in the "
                f"sample list {samples_file}. Add them to the list."
            )
        samples = listed
    else:
        samples = sorted(set(frame["Tumor_Sample_Barcode"]))
        log.warning(
            "%s: no maf_samples list given, so only the %d samples with at least one "
            "MAF row are analysed; sequenced samples without mutations are missed.",
            path, len(samples),
        )  # fmt: skip
    qualifying = frame.loc[frame["Variant_Classification"].isin(classifications)]
    qualifying = qualifying.loc[~is_missing(qualifying[gene_column])]
    counts["qualifying_records"] = int(qualifying.shape[0])
    genes = sorted(set(qualifying[gene_column]))
    gene_index = {g: i for i, g in enumerate(genes)}
    sample_index = {s: i for i, s in enumerate(samples)}
    matrix = np.zeros((len(genes), len(samples)))
    rows = qualifying[gene_column].map(gene_index).to_numpy()
    cols = qualifying["Tumor_Sample_Barcode"].map(sample_index).to_numpy()
    matrix[rows, cols] = 1.0
    return GeneStatus(genes, samples, matrix, path, counts)


def _read_maf_table(path: Path) -> pd.DataFrame:
    # MAF files may start with "#version 2.4" lines; skip comment lines only at
    # the top so that '#' inside values is kept.
    import gzip

    opener = gzip.open if path.suffix in (".gz", ".bgz") else open
    skip = 0
    with opener(path, "rt") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            skip += 1
    try:
        frame = pd.read_csv(
            path, sep="\t", dtype=str, skiprows=skip, keep_default_na=False,
            na_filter=False, low_memory=False,
        )  # fmt: skip
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"Could not read the MAF file {path}: {exc}") from None
    if frame.empty:
        raise InputError(f"The MAF file {path} has no rows.")
    return frame
