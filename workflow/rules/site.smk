# Site stage: one hospital's inputs -> one summary bundle.


rule site_bundle:
    input:
        unpack(site_inputs),
    output:
        bundle=directory(f"{OUT}/bundles/{{site}}.naipo"),
        join_report=f"{OUT}/sites/{{site}}/join_report.tsv",
    log:
        f"{LOGS}/site/{{site}}.log",
    threads: config["threads"]
    resources:
        mem_mb=lambda wildcards, input: max(2000, int(input.size_mb * 20)),
        runtime=lambda wildcards, input: max(15, int(input.size_mb / 50)),
    script:
        "../scripts/site_bundle.py"
