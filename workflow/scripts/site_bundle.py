"""Snakemake script of rule site_bundle: runs the site stage of one site."""

from naipo_bio.site.run import run_site
from naipo_bio.workflow_support import rule_logging

with rule_logging(snakemake.log[0]):  # noqa: F821 (set by Snakemake)
    run_site(
        snakemake.wildcards.site,  # noqa: F821
        snakemake.config,  # noqa: F821
        snakemake.output.bundle,  # noqa: F821
        report_dir=snakemake.output.join_report.rsplit("/", 1)[0],  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )
