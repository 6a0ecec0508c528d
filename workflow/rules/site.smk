# Site stage: one hospital's inputs -> one summary bundle. Germline VCFs are
# cut into region chunks, one job each, gathered into the bundle.


checkpoint site_prepare:
    input:
        unpack(site_inputs),
    output:
        patients=f"{OUT}/sites/{{site}}/patients.txt",
        regions=f"{OUT}/sites/{{site}}/regions.txt",
        join_report=f"{OUT}/sites/{{site}}/join_report.tsv",
    log:
        f"{LOGS}/site_prepare/{{site}}.log",
    threads: 1
    resources:
        mem_mb=lambda wildcards, input: max(2000, int(input.size_mb * 20)),
        runtime=30,
    script:
        "../scripts/site_prepare.py"


rule variant_chunk:
    input:
        unpack(germline_inputs),
        patients=f"{OUT}/sites/{{site}}/patients.txt",
    output:
        variants=f"{OUT}/sites/{{site}}/chunks/{{region}}.variants.parquet",
        rare=temp(f"{OUT}/sites/{{site}}/chunks/{{region}}.rare.parquet"),
        rare_dosage=temp(f"{OUT}/sites/{{site}}/chunks/{{region}}.rare_dosage.parquet"),
    log:
        f"{LOGS}/variant_chunk/{{site}}/{{region}}.log",
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    script:
        "../scripts/variant_chunk.py"


rule site_bundle:
    input:
        unpack(site_inputs),
        unpack(chunk_outputs),
        patients=f"{OUT}/sites/{{site}}/patients.txt",
    output:
        bundle=directory(f"{OUT}/bundles/{{site}}.naipo"),
    params:
        report_dir=lambda wildcards, input: os.path.dirname(input.patients),
    log:
        f"{LOGS}/site/{{site}}.log",
    threads: config["threads"]
    resources:
        mem_mb=lambda wildcards, input: max(2000, int(input.size_mb * 20)),
        runtime=lambda wildcards, input: max(15, int(input.size_mb / 50)),
    script:
        "../scripts/site_bundle.py"
