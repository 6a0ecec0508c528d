"""Snakemake script of checkpoint site_prepare: join a site's inputs, write the
analysed patients (site-local) and the list of germline chunks."""

from pathlib import Path

from naipo_bio.io.atomic import write_text
from naipo_bio.site.prepare import prepare_site, write_patients
from naipo_bio.site.run import chunk_regions
from naipo_bio.workflow_support import rule_logging

with rule_logging(snakemake.log[0]):
    output = snakemake.output
    config = snakemake.config
    prepared = prepare_site(
        snakemake.wildcards.site,
        config,
        Path(output.join_report).parent,
    )
    write_patients(prepared, output.patients)
    regions = [region.name for region in chunk_regions(prepared, config)]
    write_text(output.regions, "".join(f"{name}\n" for name in regions))
