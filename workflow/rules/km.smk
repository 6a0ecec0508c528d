# Kaplan-Meier round: after the first merge, each site answers the
# coordinator's request (biomarkers and cut points) with coarse KM counts and
# log-rank parts; the second merge pools them and writes the final report.


rule site_km:
    input:
        unpack(site_inputs),
        request=f"{OUT}/merge/km_request.tsv",
    output:
        bundle=directory(f"{OUT}/bundles/{{site}}.km.naipo"),
    log:
        f"{LOGS}/site_km/{{site}}.log",
    threads: 1
    resources:
        mem_mb=lambda wildcards, input: max(2000, int(input.size_mb * 20)),
        runtime=30,
    script:
        "../scripts/site_km.py"


rule merge_km:
    input:
        unpack(registry_input),
        bundles=[f"{OUT}/bundles/{site}.km.naipo" for site in SITES],
        request=f"{OUT}/merge/km_request.tsv",
        summary=f"{OUT}/merge/summary.json",
    output:
        km=report(
            directory(f"{OUT}/merge/km"),
            patterns=["plots/{name}.png"],
            category="Kaplan-Meier",
        ),
        report=report(f"{OUT}/merge/report.html", category="Report"),
    params:
        merge_dir=lambda wildcards, input: os.path.dirname(input.summary),
        require_signatures=config["merge"]["require_signatures"],
        analysis=config["analysis"],
    log:
        f"{LOGS}/merge_km.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/merge_km.py"
