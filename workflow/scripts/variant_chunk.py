"""Snakemake script of rule variant_chunk: score the variants of one region."""

from naipo_bio.genotypes.reader import Region
from naipo_bio.site.prepare import prepare_site
from naipo_bio.site.run import run_variant_chunk
from naipo_bio.stats._numba import set_threads
from naipo_bio.workflow_support import rule_logging

with rule_logging(snakemake.log[0]):
    set_threads(snakemake.threads)
    wildcards = snakemake.wildcards
    prepared = prepare_site(
        wildcards.site,
        snakemake.config,
        patients_file=snakemake.input.patients,
    )
    contig, start, end = wildcards.region.rsplit("_", 2)
    prefix = snakemake.output.variants.removesuffix(".variants.parquet")
    run_variant_chunk(
        prepared, snakemake.config, Region(contig, int(start), int(end)), prefix
    )
