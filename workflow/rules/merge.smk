# Merge: bundles of all sites -> pooled association tables, figures, report.


rule merge:
    input:
        bundles=merge_bundles(),
    output:
        tables=report(
            directory(f"{OUT}/merge/tables"),
            patterns=["{name}.tsv"],
            category="Association tables",
        ),
        plots=report(
            directory(f"{OUT}/merge/plots"),
            patterns=["{name}.png"],
            category="Figures",
        ),
        summary=f"{OUT}/merge/summary.json",
        report=report(f"{OUT}/merge/report.html", category="Report"),
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
        top_hits=config["merge"]["top_hits"],
        fdr=config["merge"]["fdr"],
        variants={
            key: config["merge"][key]
            for key in ("min_pooled_mac", "rare_maf", "ambiguous_max_maf", "reference_sites")
        },
    log:
        f"{LOGS}/merge.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/merge.py"
