"""Snakemake script of rule merge: pools every bundle into association tests."""

from naipo_bio.merge.run import run_merge
from naipo_bio.workflow_support import rule_logging

with rule_logging(snakemake.log[0]):  # noqa: F821 (set by Snakemake)
    run_merge(
        snakemake.input.bundles,  # noqa: F821
        snakemake.params.out_dir,  # noqa: F821
        top_hits=snakemake.params.top_hits,  # noqa: F821
        fdr=snakemake.params.fdr,  # noqa: F821
    )
