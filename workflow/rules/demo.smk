# Demo only: build each pseudo-site's inputs from a public data set.

DEMO = config["demo"]
DEMO_LOG = f"{LOGS}/demo_inputs/{{site}}.log"
DEMO_SHELL = (
    "naipo-bio demo-inputs --dataset {params.dataset} --resources {params.resources}"
    " --site {params.number} --n-sites {params.n_sites} --out {params.out_dir}"
    " > {log} 2>&1"
)

if DEMO["enabled"] and DEMO["dataset"] == "tcga-acc":

    rule demo_inputs:
        input:
            clinical=f"{DEMO['resources']}/ACC.clinical.20160128.tsv.gz",
            maf=f"{DEMO['resources']}/ACC.mutations.20160128.maf.tsv.gz",
            rnaseq=f"{DEMO['resources']}/ACC.rnaseq_RSEM_genes_normalized.20160128.tsv.gz",
        output:
            clinical=f"{OUT}/demo/inputs/{{site}}/clinical.tsv",
            somatic=f"{OUT}/demo/inputs/{{site}}/somatic.vcf.gz",
            index=f"{OUT}/demo/inputs/{{site}}/somatic.vcf.gz.tbi",
            expression=f"{OUT}/demo/inputs/{{site}}/expression.tsv.gz",
            sample_map=f"{OUT}/demo/inputs/{{site}}/sample_map.tsv",
        params:
            dataset=DEMO["dataset"],
            number=lambda wildcards: SITES.index(wildcards.site) + 1,
            n_sites=DEMO["n_sites"],
            resources=lambda wildcards, input: os.path.dirname(input.clinical),
            out_dir=lambda wildcards, output: os.path.dirname(output.clinical),
        log:
            DEMO_LOG,
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        shell:
            DEMO_SHELL


if DEMO["enabled"] and DEMO["dataset"] == "1kg-chr22":

    rule demo_inputs:
        input:
            vcf=f"{DEMO['resources']}/chr22.vcf.gz",
        output:
            clinical=f"{OUT}/demo/inputs/{{site}}/clinical.tsv",
            germline=f"{OUT}/demo/inputs/{{site}}/germline.vcf.gz",
            index=f"{OUT}/demo/inputs/{{site}}/germline.vcf.gz.tbi",
        params:
            dataset=DEMO["dataset"],
            number=lambda wildcards: SITES.index(wildcards.site) + 1,
            n_sites=DEMO["n_sites"],
            resources=lambda wildcards, input: os.path.dirname(input.vcf),
            out_dir=lambda wildcards, output: os.path.dirname(output.clinical),
        log:
            DEMO_LOG,
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            DEMO_SHELL


if DEMO["enabled"] and DEMO["dataset"] == "transbig":

    rule demo_inputs:
        input:
            data=f"{DEMO['resources']}/breast_cancer_GSE7390-metastasis.csv.gz",
        output:
            clinical=f"{OUT}/demo/inputs/{{site}}/clinical.tsv",
            expression=f"{OUT}/demo/inputs/{{site}}/expression.tsv",
        params:
            dataset=DEMO["dataset"],
            number=lambda wildcards: SITES.index(wildcards.site) + 1,
            n_sites=DEMO["n_sites"],
            resources=lambda wildcards, input: os.path.dirname(input.data),
            out_dir=lambda wildcards, output: os.path.dirname(output.clinical),
        log:
            DEMO_LOG,
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            DEMO_SHELL


# Demo keys: each pseudo-site makes its own key pairs; the registry of their
# public halves is what a consortium would distribute.
DEMO_KEYS = f"{OUT}/demo/keys"

if DEMO["enabled"]:

    rule demo_keys:
        output:
            signing=f"{DEMO_KEYS}/{{site}}/signing_key.pem",
            agreement=f"{DEMO_KEYS}/{{site}}/agreement_key.pem",
            public=f"{DEMO_KEYS}/{{site}}/public.yaml",
        params:
            out_dir=lambda wildcards, output: os.path.dirname(output.public),
        log:
            f"{LOGS}/demo_keys/{{site}}.log",
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        localrule: True
        shell:
            "naipo-bio keygen --site {wildcards.site} --out {params.out_dir} > {log} 2>&1"

    rule demo_registry:
        input:
            [f"{DEMO_KEYS}/{site}/public.yaml" for site in SITES],
        output:
            f"{DEMO_KEYS}/registry.yaml",
        log:
            f"{LOGS}/demo_registry.log",
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        localrule: True
        shell:
            "naipo-bio registry {input} --out {output} > {log} 2>&1"

    rule demo_universe:
        output:
            f"{OUT}/demo/universe.tsv",
        params:
            dataset=DEMO["dataset"],
            resources=DEMO["resources"],
        log:
            f"{LOGS}/demo_universe.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=5,
        localrule: True
        shell:
            "naipo-bio universe --demo {params.dataset} --resources {params.resources}"
            " --out {output} > {log} 2>&1"
