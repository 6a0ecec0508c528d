"""Somatic (VCF with CSQ or ANN, MAF) and expression (TSV, h5ad) readers."""

from __future__ import annotations

import copy
import warnings

import anndata
import numpy as np
import pandas as pd
import pytest

from naipo_bio.bundle.read import read_bundle
from naipo_bio.errors import InputError
from naipo_bio.io.expression import gene_key, read_expression
from naipo_bio.io.somatic import read_maf, read_somatic_vcf
from naipo_bio.site.run import run_site

CONSEQUENCES = {"missense_variant", "stop_gained", "frameshift_variant"}

ANN_VCF = """\
##fileformat=VCFv4.2
##contig=<ID=1,length=249250621>
##INFO=<ID=ANN,Number=.,Type=String,Description="Functional annotations: 'Allele | Annotation | Annotation_Impact | Gene_Name | Gene_ID | Feature_Type'">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3\tS4
1\t100\t.\tA\tC,G\t.\tPASS\tANN=C|missense_variant|MODERATE|GENE1|G1|transcript,G|synonymous_variant|LOW|GENE1|G1|transcript\tGT\t0/1\t0/2\t0/0\t./.
1\t200\t.\tT\tTA\t.\tPASS\tANN=TA|frameshift_variant|HIGH|GENE2|G2|transcript\tGT\t0/0\t0/0\t0/1\t0/0
1\t300\t.\tG\tA\t.\tLowQual\tANN=A|stop_gained|HIGH|GENE3|G3|transcript\tGT\t1/1\t0/0\t0/0\t0/0
"""

CSQ_VCF = """\
##fileformat=VCFv4.2
##contig=<ID=1,length=249250621>
##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. Format: Allele|Consequence|IMPACT|SYMBOL|Gene">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3
1\t100\t.\tCAG\tC,CAGAG\t.\t.\tCSQ=-|frameshift_variant|HIGH|GENE4|ENSG4,AGAG|inframe_insertion|MODERATE|GENE4|ENSG4\tGT\t0|1\t0/2\t1/2
1\t150\t.\tC\tT\t.\tPASS\tCSQ=T|splice_region_variant&missense_variant|MODERATE|GENE5|ENSG5\tGT\t0/0\t0/1\t0/0
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def status_of(result):
    return pd.DataFrame(result.matrix, index=result.genes, columns=result.samples)


def test_snpeff_ann_gene_status(tmp_path):
    path = write(tmp_path, "ann.vcf", ANN_VCF)
    result = read_somatic_vcf(path, CONSEQUENCES, {"PASS"}, "symbol")
    table = status_of(result)
    # S1 carries C (missense); S2 carries only G (synonymous); S4 has no call.
    assert table.loc["GENE1"].tolist() == [1, 0, 0, 0]
    assert table.loc["GENE2"].tolist() == [0, 0, 1, 0]
    assert "GENE3" not in table.index  # FILTER LowQual is not accepted
    assert result.counts["filtered"] == 1


def test_missing_genotype_policy(tmp_path):
    path = write(tmp_path, "ann.vcf", ANN_VCF)
    result = read_somatic_vcf(
        path, CONSEQUENCES, {"PASS"}, "symbol", missing_genotype="missing"
    )
    row = status_of(result).loc["GENE1"]
    assert row["S1"] == 1
    assert np.isnan(row["S4"])


def test_vep_trimmed_indel_alleles_and_gene_id_key(tmp_path):
    path = write(tmp_path, "csq.vcf", CSQ_VCF)
    consequences = CONSEQUENCES | {"inframe_insertion"}
    table = status_of(read_somatic_vcf(path, consequences, {"PASS"}, "symbol"))
    # VEP writes the deletion CAG>C as "-" and the insertion CAG>CAGAG as "AGAG".
    assert table.loc["GENE4"].tolist() == [1, 1, 1]
    only_frameshift = status_of(
        read_somatic_vcf(path, CONSEQUENCES, {"PASS"}, "symbol")
    )
    assert only_frameshift.loc["GENE4"].tolist() == [1, 0, 1]
    assert only_frameshift.loc["GENE5"].tolist() == [0, 1, 0]
    by_id = status_of(read_somatic_vcf(path, consequences, {"PASS"}, "gene_id"))
    assert "ENSG4" in by_id.index


def test_vcf_without_annotation_rejected(tmp_path):
    text = ANN_VCF.replace("ANN", "XXX")
    path = write(tmp_path, "plain.vcf", text)
    with pytest.raises(InputError, match="no CSQ or ANN"):
        read_somatic_vcf(path, CONSEQUENCES, {"PASS"}, "symbol")


def test_vcf_on_other_build_rejected(tmp_path):
    path = write(tmp_path, "ann.vcf", ANN_VCF)
    with pytest.raises(InputError, match="249,250,621") as info:
        read_somatic_vcf(path, CONSEQUENCES, {"PASS"}, "symbol", build="GRCh38")
    assert "248,956,422" in str(info.value)
    assert "GRCh37" in str(info.value)


@pytest.mark.parametrize("text", ["", "##fileformat=VCFv4.2\n", "not a vcf\n"])
def test_empty_or_broken_vcf_rejected(tmp_path, text):
    path = write(tmp_path, "broken.vcf", text)
    with pytest.raises(InputError, match="broken.vcf"):
        read_somatic_vcf(path, CONSEQUENCES, {"PASS"}, "symbol")


def test_maf_and_vcf_give_identical_bundles(tmp_path, demo_run):
    """The site stage on the MAF rows equals the site stage on the VCF built
    from them (gene status, counts, U, V, fits)."""
    from conftest import DEMO_RESOURCES
    from naipo_bio.demo.tcga_acc import MAF, site_of

    maf = pd.read_csv(DEMO_RESOURCES / MAF, sep="\t", dtype=str)
    maf = maf.loc[[site_of(b) == 1 for b in maf.Tumor_Sample_Barcode]]
    maf_path = tmp_path / "site1.maf"
    maf.to_csv(maf_path, sep="\t", index=False)
    samples = tmp_path / "samples.txt"
    samples.write_text("\n".join(sorted(set(maf.Tumor_Sample_Barcode))) + "\n")
    config = copy.deepcopy(demo_run.config)
    config["sites"]["site1"]["somatic"] = {
        "maf": str(maf_path),
        "maf_samples": str(samples),
        "missing_genotype": "wildtype",
        "annotation": "auto",
    }
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        run_site("site1", config, tmp_path / "maf.naipo", tmp_path / "report")
    from_maf = read_bundle(tmp_path / "maf.naipo").table("mutation")
    from_vcf = read_bundle(demo_run.bundles[0]).table("mutation")
    pd.testing.assert_frame_equal(
        from_maf.sort_values("biomarker_id").reset_index(drop=True),
        from_vcf.sort_values("biomarker_id").reset_index(drop=True),
    )


def test_maf_build_mismatch_rejected(tmp_path):
    path = write(
        tmp_path, "x.maf",
        "Hugo_Symbol\tVariant_Classification\tTumor_Sample_Barcode\tNCBI_Build\n"
        "TP53\tMissense_Mutation\tS1\t37\n",
    )  # fmt: skip
    with pytest.raises(InputError, match="NCBI_Build"):
        read_maf(path, {"Missense_Mutation"}, {"PASS"}, "symbol", build="GRCh38")


def test_gene_keys():
    assert gene_key("ENSG00000141510.16") == ("ENSG00000141510", "ENSG00000141510.16")
    assert gene_key("MKI67|4288") == ("MKI67|4288", "MKI67")
    assert gene_key("?|100130426") == ("?|100130426", "")


def test_h5ad_equals_tsv(tmp_path):
    genes = ["ENSG00000141510", "ENSG00000012048", "ENSG00000187522"]
    values = np.array(
        [[812.0, 640.0, 1033.0], [95.0, 120.0, 77.0], [300.0, 280.0, 310.0]]
    )
    tsv = tmp_path / "expr.tsv"
    pd.DataFrame(values, index=genes, columns=["a", "b", "c"]).rename_axis(
        "gene_id"
    ).to_csv(tsv, sep="\t")
    h5ad = tmp_path / "expr.h5ad"
    anndata.AnnData(
        X=values.T,
        obs=pd.DataFrame(index=["a", "b", "c"]),
        var=pd.DataFrame(index=genes),
    ).write_h5ad(h5ad)
    from_tsv = read_expression({"path": str(tsv), "scale": "linear"})
    from_h5ad = read_expression({"path": str(h5ad), "scale": "linear"})
    assert from_tsv.gene_ids == from_h5ad.gene_ids
    assert from_tsv.samples == from_h5ad.samples
    np.testing.assert_array_equal(from_tsv.matrix, from_h5ad.matrix)
    np.testing.assert_allclose(from_tsv.matrix[0, 0], np.log2(813.0))


def test_expression_non_number_named(tmp_path):
    path = write(tmp_path, "e.tsv", "gene_id\ta\tb\nENSG00000141510\t1.5\thigh\n")
    with pytest.raises(InputError, match="'high'") as info:
        read_expression({"path": str(path)})
    assert "sample 'b'" in str(info.value)
