# Paths and input functions shared by the rules.

import re

OUT = config["outdir"]
SITES = list(config["sites"])
LOGS = f"{OUT}/logs"


# A site id never matches "site1.km" (the Kaplan-Meier bundle) or a path.
wildcard_constraints:
    site="|".join(re.escape(site) for site in SITES) or "[^/.]+",
    region="[^/]+",


def bundle_path(site):
    return f"{OUT}/bundles/{site}.naipo"


def merge_bundles():
    return [bundle_path(site) for site in SITES] + list(config["merge"]["bundles"])


def merge_enabled():
    return config["merge"]["enabled"] and len(merge_bundles()) > 0


def final_outputs():
    outputs = [bundle_path(site) for site in SITES] + release_listings()
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
    files.update(germline_inputs(wildcards))
    files.update(key_inputs(wildcards))
    return files


def key_inputs(wildcards):
    """The signing key and secure-aggregation files a site names, if any."""
    site = config["sites"][wildcards.site]
    files = {}
    if site.get("signing"):
        files["signing_key"] = site["signing"]["private_key"]
    for key, path in (site.get("secure") or {}).items():
        files[f"secure_{key}"] = path
    return files


def registry_input(wildcards):
    """The key registry the merge verifies signatures against, if any."""
    registry = config["merge"]["registry"]
    return {"registry": registry} if registry else {}


def km_round():
    return config["analysis"]["km"]["enabled"] and merge_enabled()


def release_listings():
    """One plain-language listing per bundle a site releases."""
    listings = [f"{OUT}/sites/{site}/release_listing.txt" for site in SITES]
    if km_round():
        listings += [f"{OUT}/sites/{site}/release_listing.km.txt" for site in SITES]
    return listings


def germline_inputs(wildcards):
    """The germline VCF and its index (and gene BED) of a site, if any."""
    germline = config["sites"][wildcards.site].get("germline")
    if not germline:
        return {}
    vcf = germline["vcf"]
    files = {"germline": vcf}
    if vcf.endswith((".gz", ".bgz", ".bcf")):
        index = [f"{vcf}{suffix}" for suffix in (".tbi", ".csi") if os.path.exists(f"{vcf}{suffix}")]
        files["germline_index"] = index[0] if index else (
            f"{vcf}.csi" if vcf.endswith(".bcf") else f"{vcf}.tbi"
        )
    if germline.get("gene_bed"):
        files["gene_bed"] = germline["gene_bed"]
    return files


def chunk_outputs(wildcards):
    """Per-chunk tables of a site, from the chunk list its checkpoint wrote."""
    regions_file = checkpoints.site_prepare.get(site=wildcards.site).output.regions
    with open(regions_file) as handle:
        regions = [line.strip() for line in handle if line.strip()]
    folder = f"{OUT}/sites/{wildcards.site}/chunks"
    files = {}
    for region in regions:
        for part in ("variants", "rare", "rare_dosage"):
            files[f"chunk_{region}_{part}"] = f"{folder}/{region}.{part}.parquet"
    return files
