"""Snakemake script of rule site_bundle: runs the site stage of one site and
gathers its germline chunks into the bundle."""

from naipo_bio.site.run import run_site
from naipo_bio.workflow_support import rule_logging

with rule_logging(snakemake.log[0]):
    chunks = sorted(
        {
            path.removesuffix(".variants.parquet")
            for path in snakemake.input
            if path.endswith(".variants.parquet")
        },
        key=lambda prefix: list(snakemake.input).index(prefix + ".variants.parquet"),
    )
    run_site(
        snakemake.wildcards.site,
        snakemake.config,
        snakemake.output.bundle,
        report_dir=snakemake.params.report_dir,
        threads=snakemake.threads,
        chunk_prefixes=chunks,
    )
