"""Snakemake script of rule merge: pools every bundle into association tests."""

from naipo_bio.merge.run import run_merge
from naipo_bio.workflow_support import rule_logging

with rule_logging(snakemake.log[0]):
    run_merge(
        snakemake.input.bundles,
        snakemake.params.out_dir,
        top_hits=snakemake.params.top_hits,
        fdr=snakemake.params.fdr,
        variant_settings=snakemake.params.variants,
        report=snakemake.params.report,
        registry=snakemake.input.get("registry"),
        require_signatures=snakemake.params.require_signatures,
        expected_analysis=snakemake.params.analysis,
    )
