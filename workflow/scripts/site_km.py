"""Snakemake script of rule site_km: answers the Kaplan-Meier request."""

from naipo_bio.site.km import run_site_km
from naipo_bio.workflow_support import rule_logging

with rule_logging(snakemake.log[0]):
    run_site_km(
        snakemake.wildcards.site,
        snakemake.config,
        snakemake.input.request,
        snakemake.output.bundle,
    )
