"""Which gene(s) each variant belongs to, for gene-level tests.

Two sources: the VEP (CSQ) or SnpEff (ANN) annotation of the VCF, where a
variant joins a gene when its annotation for that gene has one of the
configured consequence terms; or a BED file of gene regions (chrom, start, end,
gene; 0-based half-open), where a variant joins every gene whose region holds
its position.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from naipo_bio.errors import InputError
from naipo_bio.io.genome import canonical_contig
from naipo_bio.io.somatic import ANNOTATION_FIELDS, _allele_lookup


class AnnotationGenes:
    """Gene membership from CSQ/ANN annotation strings."""

    def __init__(
        self, key: str, field_names: list[str], consequences: set[str], gene_key: str
    ):
        allele, consequence, symbol, gene_id = ANNOTATION_FIELDS[key]
        gene = symbol if gene_key == "symbol" else gene_id
        missing = [f for f in (allele, consequence, gene) if f not in field_names]
        if missing:
            raise InputError(
                f"The {key} annotation lacks the sub-field(s) {missing} needed for "
                "gene-level tests; re-annotate or give a gene BED file."
            )
        self.i_allele = field_names.index(allele)
        self.i_consequence = field_names.index(consequence)
        self.i_gene = field_names.index(gene)
        self.consequences = consequences

    def genes(
        self, note: str | None, ref: str, alts: list[str], alt_index: int
    ) -> dict[str, str]:
        """Gene -> '&'-joined qualifying consequences of ALT ``alt_index`` (1-based)."""
        if not note:
            return {}
        lookup = _allele_lookup(ref, tuple(alts))
        found: dict[str, set[str]] = {}
        for entry in note.split(","):
            parts = entry.split("|")
            if len(parts) <= max(self.i_allele, self.i_consequence, self.i_gene):
                continue
            allele = lookup.get(parts[self.i_allele])
            if allele is None and len(alts) == 1:
                allele = 1
            if allele != alt_index or not parts[self.i_gene]:
                continue
            terms = set(parts[self.i_consequence].split("&")) & self.consequences
            if terms:
                found.setdefault(parts[self.i_gene], set()).update(terms)
        return {gene: "&".join(sorted(terms)) for gene, terms in found.items()}


REGION_HEADER = {"biomarker_id", "gene", "name", "chrom", "contig", "start", "end"}


class BedGenes:
    """Gene (or region biomarker) membership from a file of regions.

    Two layouts: BED (no header; chrom, start, end, name; 0-based half-open), or
    a TSV whose header names biomarker_id (or gene, name), chrom (or contig),
    start and end, with 1-based inclusive coordinates.
    """

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.exists():
            raise InputError(f"The gene region file was not found: {path}")
        regions: dict[str, list[tuple[int, int, str]]] = {}
        lines = path.read_text().splitlines()
        one_based = False
        columns = (0, 1, 2, 3)
        if lines and set(lines[0].split("\t")) & REGION_HEADER >= {"start", "end"}:
            header = lines[0].split("\t")
            name = next(c for c in ("biomarker_id", "gene", "name") if c in header)
            chrom = "chrom" if "chrom" in header else "contig"
            columns = tuple(header.index(c) for c in (chrom, "start", "end", name))
            one_based = True
            lines[0] = ""
        self.names: list[tuple[str, str]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            parts = line.split("\t")
            if len(parts) <= max(columns):
                raise InputError(
                    f"{path}: line {number} has {len(parts)} columns; a region file "
                    "needs chrom, start, end and a name."
                )
            fields = [parts[i] for i in columns]
            try:
                start, end = int(fields[1]), int(fields[2])
            except ValueError:
                raise InputError(
                    f"{path}: line {number}: start/end are not integers."
                ) from None
            if one_based:
                start -= 1
            contig = canonical_contig(fields[0])
            regions.setdefault(contig, []).append((start, end, fields[3]))
            self.names.append((fields[3], contig))
        self.regions = {c: sorted(r) for c, r in regions.items()}
        self.starts = {c: [r[0] for r in rs] for c, rs in self.regions.items()}
        self.longest = {
            c: max(r[1] - r[0] for r in rs) for c, rs in self.regions.items()
        }

    def absent(self, contigs: set[str]) -> list[str]:
        """Regions on contigs that the genotype file does not have."""
        return sorted({name for name, contig in self.names if contig not in contigs})

    def genes(self, contig: str, pos: int) -> dict[str, str]:
        regions = self.regions.get(contig)
        if not regions:
            return {}
        zero_based = pos - 1
        right = bisect.bisect_right(self.starts[contig], zero_based)
        left = bisect.bisect_left(
            self.starts[contig], zero_based - self.longest[contig]
        )
        return {
            name: "in_region"
            for start, end, name in regions[left:right]
            if start <= zero_based < end
        }
