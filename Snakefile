# Entry point for running `snakemake` from the repository root. The workflow
# itself lives in workflow/Snakefile, where Snakemake's catalog looks for it.
include: "workflow/Snakefile"


# Snakemake (checked with 9.27) ignores `default_target` in an included file,
# so this file names the default target itself.
rule default:
    input:
        rules.all.input,
    default_target: True
