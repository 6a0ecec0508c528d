# Demo only: build each pseudo-site's inputs from the TCGA ACC tables.

DEMO_RESOURCES = config["demo"]["resources"]


rule demo_inputs:
    input:
        clinical=f"{DEMO_RESOURCES}/ACC.clinical.20160128.tsv.gz",
        maf=f"{DEMO_RESOURCES}/ACC.mutations.20160128.maf.tsv.gz",
        rnaseq=f"{DEMO_RESOURCES}/ACC.rnaseq_RSEM_genes_normalized.20160128.tsv.gz",
    output:
        clinical=f"{OUT}/demo/inputs/{{site}}/clinical.tsv",
        somatic=f"{OUT}/demo/inputs/{{site}}/somatic.vcf.gz",
        index=f"{OUT}/demo/inputs/{{site}}/somatic.vcf.gz.tbi",
        expression=f"{OUT}/demo/inputs/{{site}}/expression.tsv.gz",
        sample_map=f"{OUT}/demo/inputs/{{site}}/sample_map.tsv",
    params:
        number=lambda wildcards: SITES.index(wildcards.site) + 1,
        n_sites=config["demo"]["n_sites"],
        resources=lambda wildcards, input: os.path.dirname(input.clinical),
        out_dir=lambda wildcards, output: os.path.dirname(output.clinical),
    log:
        f"{LOGS}/demo_inputs/{{site}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "naipo-bio demo-inputs --resources {params.resources} --site {params.number}"
        " --n-sites {params.n_sites} --out {params.out_dir} > {log} 2>&1"
