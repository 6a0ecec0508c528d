"""The data contract: column roles, biomarker kinds, statuses and bundle tables.

Everything that crosses the boundary between a site and the coordinator is
declared here, so the writer, the reader, the disclosure check and the release
listing share one definition.
"""

from __future__ import annotations

import pyarrow as pa

#: Version of the summary-bundle format. Readers accept every version listed in
#: ``READABLE_SCHEMA_VERSIONS``; a bundle of a newer major version is rejected.
SCHEMA_VERSION = "1.0"
READABLE_SCHEMA_VERSIONS = ("1.0",)

BUNDLE_FORMAT = "naipo-bio summary bundle"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "signature.json"

#: Every survival time is converted to days at the site; the unit is stored in
#: the manifest and the merge rejects bundles in any other unit.
TIME_UNIT = "days"
DAYS_PER_UNIT = {
    "days": 1.0,
    "weeks": 7.0,
    "months": 30.4375,  # 365.25 / 12
    "years": 365.25,
}

#: Roles of the clinical-table columns a site maps to its own column names.
CLINICAL_ROLES = ("patient_id", "time", "event")

#: Biomarker kinds and the table that carries each in a bundle.
KINDS = {
    "mutation": "gene-level somatic mutation status (1 = mutated, 0 = wild type)",
    "expression": "gene expression on the log2 scale",
    "pseudobulk": "gene expression in one cell type (log2 CPM of the pseudobulk)",
    "cell_proportion": "fraction of a patient's cells of one cell type",
}

#: Kinds with continuous values, for which histograms and per-SD effects apply.
CONTINUOUS_KINDS = ("expression", "pseudobulk", "cell_proportion")

#: Per-variant tables are named separately: their rows are keyed by position
#: and alleles, not by a biomarker id.
VARIANT_TABLE = "variant"
GENE_BLOCK_TABLE = "gene_block"
HISTOGRAM_TABLE = "histogram"
KM_TABLE = "km"
LOGRANK_TABLE = "logrank"
STATUS_QC_FAILED = "qc_failed"

#: Per-biomarker status at a site. Only "ok" rows contribute to the pooled test.
STATUS_OK = "ok"
STATUS_NO_EVENTS = "no_events"
STATUS_NO_CARRIERS = "no_carriers"
STATUS_CONSTANT = "constant"
STATUS_SUPPRESSED = "suppressed"
STATUSES = (
    STATUS_OK,
    STATUS_NO_EVENTS,
    STATUS_NO_CARRIERS,
    STATUS_CONSTANT,
    STATUS_SUPPRESSED,
)

#: Status of a per-site Cox fit of one biomarker.
FIT_STATUSES = ("ok", "infinite", "not_converged", "singular", "not_fitted")

#: Schema of a per-kind association table in a bundle. Count columns are null
#: where the disclosure policy withheld a small cell.
ASSOCIATION_SCHEMA = pa.schema(
    [
        pa.field("biomarker_id", pa.string(), nullable=False),
        pa.field("gene", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("n", pa.int64()),
        pa.field("n_events", pa.int64()),
        pa.field("n_carriers", pa.int64()),
        pa.field("n_carrier_events", pa.int64()),
        pa.field("u", pa.float64()),
        pa.field("v", pa.float64()),
        pa.field("log_hr", pa.float64()),
        pa.field("se", pa.float64()),
        pa.field("fit_status", pa.string()),
        pa.field("sum_x", pa.float64()),
        pa.field("sum_x2", pa.float64()),
    ]
)

#: Columns of the association table that count patients; the disclosure policy's
#: minimum cell count applies to each of them.
COUNT_COLUMNS = ("n", "n_events", "n_carriers", "n_carrier_events")

#: Schema of the per-variant table (one row per biallelic test). The dosage is
#: the count of ``alt`` alleles; ``genes`` lists gene:consequence pairs.
VARIANT_SCHEMA = pa.schema(
    [
        pa.field("contig", pa.string(), nullable=False),
        pa.field("pos", pa.int64(), nullable=False),
        pa.field("ref", pa.string(), nullable=False),
        pa.field("alt", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("n", pa.int64()),
        pa.field("call_rate", pa.float64()),
        pa.field("ac", pa.float64()),
        pa.field("an", pa.float64()),
        pa.field("n_carriers", pa.int64()),
        pa.field("hwe_p", pa.float64()),
        pa.field("u", pa.float64()),
        pa.field("v", pa.float64()),
        pa.field("genes", pa.string()),
    ]
)

#: Schema of the gene blocks for gene-level tests: per gene, the keys of its
#: variants ("contig:pos:ref:alt"), their consequences, allele counts, scores
#: and the upper triangle (row-major, with the diagonal) of their covariance.
GENE_BLOCK_SCHEMA = pa.schema(
    [
        pa.field("gene", pa.string(), nullable=False),
        pa.field("variants", pa.list_(pa.string()), nullable=False),
        pa.field("consequences", pa.list_(pa.string()), nullable=False),
        pa.field("ac", pa.list_(pa.float64()), nullable=False),
        pa.field("an", pa.list_(pa.float64()), nullable=False),
        pa.field("u", pa.list_(pa.float64()), nullable=False),
        pa.field("cov", pa.list_(pa.float64()), nullable=False),
    ]
)

#: Coarse histograms of continuous biomarkers (bins of at least min_cell).
HISTOGRAM_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("biomarker_id", pa.string(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
    ]
)

#: Kaplan-Meier counts on the coarse time grid (days), per biomarker group.
KM_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("biomarker_id", pa.string(), nullable=False),
        pa.field("group", pa.string(), nullable=False),
        pa.field("time", pa.float64(), nullable=False),
        pa.field("events", pa.int64(), nullable=False),
        pa.field("censored", pa.int64(), nullable=False),
        pa.field("n", pa.int64(), nullable=False),
    ]
)

#: Log-rank parts per biomarker: observed and expected events per group and
#: their covariance (row-major), at the site's exact times.
LOGRANK_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("biomarker_id", pa.string(), nullable=False),
        pa.field("groups", pa.list_(pa.string()), nullable=False),
        pa.field("observed", pa.list_(pa.float64()), nullable=False),
        pa.field("expected", pa.list_(pa.float64()), nullable=False),
        pa.field("covariance", pa.list_(pa.float64()), nullable=False),
    ]
)

#: Kinds whose biomarkers are binary, so carrier counts apply.
CARRIER_KINDS = ("mutation",)


#: Secure aggregation: per universe biomarker, masked fixed-point sums. The
#: boolean says whether a field is a count (one exact word) or real (two words,
#: ``<name>_hi`` and ``<name>_lo``; see naipo_bio.security.secure).
SECURE_TABLE = "secure"
SECURE_FIELDS = {
    "present": True,
    "n": True,
    "n_events": True,
    "n_carriers": True,
    "n_carrier_events": True,
    "u": False,
    "v": False,
    "sum_x": False,
    "sum_x2": False,
}
SECURE_WORDS = [
    word
    for name, exact in SECURE_FIELDS.items()
    for word in ([name] if exact else [f"{name}_hi", f"{name}_lo"])
]
SECURE_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("biomarker_id", pa.string(), nullable=False),
        *(pa.field(name, pa.uint64(), nullable=False) for name in SECURE_WORDS),
    ]
)


def table_schema(name: str) -> pa.Schema | None:
    """The schema a bundle table of this name must have (None: not checked)."""
    if name in KINDS:
        return ASSOCIATION_SCHEMA
    return {
        VARIANT_TABLE: VARIANT_SCHEMA,
        GENE_BLOCK_TABLE: GENE_BLOCK_SCHEMA,
        HISTOGRAM_TABLE: HISTOGRAM_SCHEMA,
        KM_TABLE: KM_SCHEMA,
        LOGRANK_TABLE: LOGRANK_SCHEMA,
        SECURE_TABLE: SECURE_SCHEMA,
    }.get(name)
