# Release review: a plain-language listing of each bundle (tables, row counts,
# what was withheld and why, the policy in force) for the site's sign-off.


rule site_release:
    input:
        bundle=f"{OUT}/bundles/{{site}}{{round}}.naipo",
    output:
        listing=f"{OUT}/sites/{{site}}/release_listing{{round}}.txt",
    wildcard_constraints:
        round="|\\.km",
    log:
        f"{LOGS}/site_release/{{site}}{{round}}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    localrule: True
    shell:
        "naipo-bio inspect {input.bundle} --out {output.listing} > {log} 2>&1"
