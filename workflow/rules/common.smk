# Paths and input functions shared by the rules.

OUT = config["outdir"]
SITES = list(config["sites"])
LOGS = f"{OUT}/logs"


def bundle_path(site):
    return f"{OUT}/bundles/{site}.naipo"


def merge_bundles():
    return [bundle_path(site) for site in SITES] + list(config["merge"]["bundles"])


def merge_enabled():
    return config["merge"]["enabled"] and len(merge_bundles()) > 0


def final_outputs():
    outputs = [bundle_path(site) for site in SITES]
    if merge_enabled():
        outputs.append(f"{OUT}/merge/report.html")
    return outputs


def site_inputs(wildcards):
    """Every input file the site's configuration names."""
    site = config["sites"][wildcards.site]
    files = {"clinical": site["clinical"]["path"]}
    if site.get("sample_map", {}).get("path"):
        files["sample_map"] = site["sample_map"]["path"]
    somatic = site.get("somatic") or {}
    for key in ("vcf", "maf", "maf_samples"):
        if key in somatic:
            files[f"somatic_{key}"] = somatic[key]
    if site.get("expression"):
        files["expression"] = site["expression"]["path"]
    return files
