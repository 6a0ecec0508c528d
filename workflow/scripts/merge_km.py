"""Snakemake script of rule merge_km: pools the Kaplan-Meier answers."""

from naipo_bio.merge.km import run_merge_km
from naipo_bio.workflow_support import rule_logging

with rule_logging(snakemake.log[0]):
    run_merge_km(
        snakemake.input.bundles,
        snakemake.params.merge_dir,
        snakemake.input.request,
        registry=snakemake.input.get("registry"),
        require_signatures=snakemake.params.require_signatures,
        expected_analysis=snakemake.params.analysis,
    )
