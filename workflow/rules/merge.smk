# Merge: bundles of all sites -> pooled association tables, figures, report.
# With Kaplan-Meier curves requested, the merge also writes the request of the
# second round, and rule merge_km writes the final report.

KM_ENABLED = config["analysis"]["km"]["enabled"]
MERGE_OUTPUTS = {
    "tables": report(
        directory(f"{OUT}/merge/tables"),
        patterns=["{name}.tsv"],
        category="Association tables",
    ),
    "plots": report(
        directory(f"{OUT}/merge/plots"),
        patterns=["{name}.png"],
        category="Figures",
    ),
    "summary": f"{OUT}/merge/summary.json",
}
if KM_ENABLED:
    MERGE_OUTPUTS["request"] = f"{OUT}/merge/km_request.tsv"
else:
    MERGE_OUTPUTS["report"] = report(f"{OUT}/merge/report.html", category="Report")


rule merge:
    input:
        unpack(registry_input),
        bundles=merge_bundles(),
    output:
        **MERGE_OUTPUTS,
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
        top_hits=config["merge"]["top_hits"],
        fdr=config["merge"]["fdr"],
        variants={
            key: config["merge"][key]
            for key in ("min_pooled_mac", "rare_maf", "ambiguous_max_maf", "reference_sites")
        },
        report=not KM_ENABLED,
        require_signatures=config["merge"]["require_signatures"],
        analysis=config["analysis"],
    log:
        f"{LOGS}/merge.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/merge.py"
