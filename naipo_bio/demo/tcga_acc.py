"""Build per-site demo inputs from the TCGA ACC tables under ``resources/``.

Each pseudo-hospital gets what a real site would export: a clinical TSV, a
somatic multi-sample VCF annotated in VEP's CSQ style, an expression TSV of
aliquot columns, and a map from aliquot barcodes to patients.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pysam

from naipo_bio.io.atomic import atomic_file
from naipo_bio.io.genome import contig_lengths

CLINICAL = "ACC.clinical.20160128.tsv.gz"
MAF = "ACC.mutations.20160128.maf.tsv.gz"
RNASEQ = "ACC.rnaseq_RSEM_genes_normalized.20160128.tsv.gz"
BUILD = "GRCh37"

#: MAF Variant_Classification -> (Sequence Ontology term, VEP IMPACT). A MAF
#: "Splice_Site" does not say donor or acceptor, so it maps to the parent term.
MAF_TO_SO = {
    "Missense_Mutation": ("missense_variant", "MODERATE"),
    "Nonsense_Mutation": ("stop_gained", "HIGH"),
    "Nonstop_Mutation": ("stop_lost", "HIGH"),
    "Translation_Start_Site": ("start_lost", "HIGH"),
    "Frame_Shift_Del": ("frameshift_variant", "HIGH"),
    "Frame_Shift_Ins": ("frameshift_variant", "HIGH"),
    "In_Frame_Del": ("inframe_deletion", "MODERATE"),
    "In_Frame_Ins": ("inframe_insertion", "MODERATE"),
    "Splice_Site": ("splice_site_variant", "HIGH"),
    "Silent": ("synonymous_variant", "LOW"),
    "RNA": ("non_coding_transcript_exon_variant", "MODIFIER"),
    "3'UTR": ("3_prime_UTR_variant", "MODIFIER"),
    "5'UTR": ("5_prime_UTR_variant", "MODIFIER"),
    "Intron": ("intron_variant", "MODIFIER"),
    "IGR": ("intergenic_variant", "MODIFIER"),
    "5'Flank": ("upstream_gene_variant", "MODIFIER"),
    "3'Flank": ("downstream_gene_variant", "MODIFIER"),
    "Splice_Region": ("splice_region_variant", "LOW"),
}

CSQ_FORMAT = "Allele|Consequence|IMPACT|SYMBOL|ENTREZ"


def site_of(barcode: str, n_sites: int = 3) -> int:
    """Pseudo-site (1-based) of a TCGA barcode, from its 12-character patient part."""
    patient = barcode.upper()[:12]
    return int(hashlib.sha256(patient.encode()).hexdigest(), 16) % n_sites + 1


def clinical_table(resources: Path) -> pd.DataFrame:
    """Patient id, overall survival (days), vital status, age, sex, stage."""
    raw = pd.read_csv(resources / CLINICAL, sep="\t", dtype=str, keep_default_na=False)
    dead = raw["patient.vital_status"] == "dead"
    time = np.where(
        dead, raw["patient.days_to_death"], raw["patient.days_to_last_followup"]
    )
    return pd.DataFrame(
        {
            "patient_id": raw["patient.bcr_patient_barcode"].str.upper(),
            "os_days": time,
            "vital_status": raw["patient.vital_status"],
            "age_years": raw[
                "patient.primary_pathology.age_at_initial_pathologic_diagnosis"
            ],
            "sex": raw["patient.gender"],
            "stage": raw["patient.stage_event.pathologic_stage"],
        }
    )


def _vcf_alleles(row) -> tuple[int, str, str, str]:
    """VCF position, REF, ALT, and VEP's allele string of a MAF row."""
    ref = row.Reference_Allele
    alt = (
        row.Tumor_Seq_Allele2 if row.Tumor_Seq_Allele2 != ref else row.Tumor_Seq_Allele1
    )
    start = int(row.Start_position)
    if ref == "-":  # insertion after Start_position
        return start, "N", "N" + alt, alt
    if alt == "-":  # deletion of Start_position..End_position
        return start - 1, "N" + ref, "N", "-"
    return start, ref, alt, alt


def somatic_vcf_text(maf: pd.DataFrame, samples: list[str]) -> str:
    """Build a multi-sample VCF text with one record per distinct variant of ``maf``."""
    lengths = contig_lengths()[BUILD]
    contig_order = {c: i for i, c in enumerate(lengths)}
    records: dict[tuple, dict] = {}
    for row in maf.itertuples(index=False):
        pos, ref, alt, csq_allele = _vcf_alleles(row)
        key = (str(row.Chromosome), pos, ref, alt)
        entry = records.setdefault(key, {"carriers": set(), "csq": set()})
        entry["carriers"].add(row.Tumor_Sample_Barcode)
        term, impact = MAF_TO_SO.get(
            row.Variant_Classification, ("sequence_variant", "MODIFIER")
        )
        entry["csq"].add(
            f"{csq_allele}|{term}|{impact}|{row.Hugo_Symbol}|{row.Entrez_Gene_Id}"
        )
    header = [
        "##fileformat=VCFv4.2",
        f"##reference={BUILD}",
        *(f"##contig=<ID={c},length={n}>" for c, n in lengths.items()),
        '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations '
        f'in the style of Ensembl VEP. Format: {CSQ_FORMAT}">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#"
        + "\t".join(
            ["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]
            + samples
        ),
    ]
    lines = []
    for key in sorted(
        records, key=lambda k: (contig_order.get(k[0], 99), k[1], k[2], k[3])
    ):
        chrom, pos, ref, alt = key
        entry = records[key]
        genotypes = ["0/1" if s in entry["carriers"] else "0/0" for s in samples]
        csq = ",".join(sorted(entry["csq"]))
        lines.append(
            "\t".join([chrom, str(pos), ".", ref, alt, ".", "PASS", f"CSQ={csq}", "GT"])
            + "\t"
            + "\t".join(genotypes)
        )
    return "\n".join(header + lines) + "\n"


def write_bgzipped_vcf(text: str, final: Path) -> None:
    """Write ``text`` as ``final`` (bgzip) with a tabix index, both atomically."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent) as tmp:
        plain = Path(tmp) / "somatic.vcf"
        plain.write_text(text)
        pysam.tabix_index(str(plain), preset="vcf", force=True)
        os.replace(Path(tmp) / "somatic.vcf.gz", final)
        os.replace(Path(tmp) / "somatic.vcf.gz.tbi", Path(str(final) + ".tbi"))


def demo_sites(outdir: str, n_sites: int = 3) -> dict[str, dict]:
    """Site entries of the demo configuration, one per pseudo-site.

    They read what :func:`prepare_site` writes under ``<outdir>/demo/inputs``.
    """
    sites = {}
    for number in range(1, n_sites + 1):
        folder = f"{outdir}/demo/inputs/site{number}"
        sites[f"site{number}"] = {
            "clinical": {
                "path": f"{folder}/clinical.tsv",
                "columns": {
                    "time": "os_days",
                    "event": "vital_status",
                    "age": "age_years",
                },
                "time_unit": "days",
                "event_values": {"dead": 1, "alive": 0},
            },
            "sample_map": {"path": f"{folder}/sample_map.tsv"},
            "somatic": {"vcf": f"{folder}/somatic.vcf.gz"},
            "expression": {"path": f"{folder}/expression.tsv.gz"},
        }
    return sites


def prepare_site(
    resources: Path, site: int, n_sites: int, out_dir: Path
) -> dict[str, Path]:
    """Write the inputs of pseudo-site ``site`` into ``out_dir``."""
    resources = Path(resources)
    out_dir = Path(out_dir)
    paths = {
        "clinical": out_dir / "clinical.tsv",
        "expression": out_dir / "expression.tsv.gz",
        "somatic": out_dir / "somatic.vcf.gz",
        "sample_map": out_dir / "sample_map.tsv",
    }
    clinical = clinical_table(resources)
    clinical = clinical.loc[[site_of(p, n_sites) == site for p in clinical.patient_id]]
    with atomic_file(paths["clinical"]) as tmp:
        clinical.to_csv(tmp, sep="\t", index=False)

    maf = pd.read_csv(resources / MAF, sep="\t", dtype=str, keep_default_na=False)
    maf = maf.loc[[site_of(b, n_sites) == site for b in maf.Tumor_Sample_Barcode]]
    tumours = sorted(set(maf.Tumor_Sample_Barcode))
    write_bgzipped_vcf(somatic_vcf_text(maf, tumours), paths["somatic"])

    rnaseq = pd.read_csv(resources / RNASEQ, sep="\t", dtype=str, keep_default_na=False)
    aliquots = [c for c in rnaseq.columns[1:] if site_of(c, n_sites) == site]
    with atomic_file(paths["expression"]) as tmp:
        rnaseq[["gene_id", *aliquots]].to_csv(
            tmp, sep="\t", index=False, compression="gzip"
        )

    pairs = defaultdict(str)
    for barcode in tumours + aliquots:
        pairs[barcode] = barcode[:12]
    sample_map = pd.DataFrame({"sample": list(pairs), "patient": list(pairs.values())})
    with atomic_file(paths["sample_map"]) as tmp:
        sample_map.to_csv(tmp, sep="\t", index=False)
    return paths


def universe(resources: Path) -> pd.DataFrame:
    """Secure-aggregation universe: every gene of the MAF and of the RNA-seq table.

    These are the consortium's public lists (all genes the assays can report),
    not a summary of any site's patients.
    """
    resources = Path(resources)
    maf = pd.read_csv(resources / MAF, sep="\t", usecols=["Hugo_Symbol"], dtype=str)
    genes = sorted(set(maf.Hugo_Symbol.dropna()) - {"", "Unknown"})
    rnaseq = pd.read_csv(resources / RNASEQ, sep="\t", usecols=[0], dtype=str)
    expressed = [g for g in rnaseq.iloc[:, 0] if g and g != "gene_id"]
    return pd.DataFrame(
        {
            "kind": ["mutation"] * len(genes) + ["expression"] * len(expressed),
            "biomarker_id": genes + expressed,
        }
    ).drop_duplicates()
