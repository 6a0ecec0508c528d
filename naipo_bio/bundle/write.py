"""Writing a summary bundle: a folder with a JSON manifest and Parquet tables.

The folder appears under its final name only when complete. The manifest records
the SHA-256 of every table, so a reader detects any changed byte.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from naipo_bio.contract import (
    ASSOCIATION_SCHEMA,
    BUNDLE_FORMAT,
    MANIFEST_NAME,
    SCHEMA_VERSION,
)
from naipo_bio.io.atomic import atomic_directory

#: Rows per Parquet row group: the merge reads variant tables window by window
#: and skips row groups by their position statistics.
ROW_GROUP_ROWS = 65536


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("naipo-bio", "numpy", "numba", "pyarrow", "pysam"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def association_arrow(table: pd.DataFrame) -> pa.Table:
    """Convert a per-kind table to the bundle schema, with no pandas metadata."""
    columns = {}
    for field in ASSOCIATION_SCHEMA:
        series = table[field.name]
        if pa.types.is_integer(field.type):
            values = pd.array(series, dtype="Int64")
            columns[field.name] = pa.array(values, type=field.type, from_pandas=True)
        else:
            columns[field.name] = pa.array(
                series.tolist() if field.type == pa.string() else series,
                type=field.type,
                from_pandas=True,
            )
    return pa.Table.from_pydict(columns, schema=ASSOCIATION_SCHEMA)


def write_bundle(
    path: str | Path,
    manifest: dict[str, Any],
    tables: dict[str, pa.Table],
    finish: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``tables`` and the manifest into the bundle folder ``path``.

    ``manifest`` contains the site-specific fields; this function adds the format,
    schema version, creation time, software versions and table checksums.
    ``finish`` (signing, for example) runs on the temporary folder before it is
    renamed to ``path``; if it fails, nothing is written.
    """
    path = Path(path)
    full = {
        "format": BUNDLE_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "software": software_versions(),
        **manifest,
        "tables": {},
    }
    with atomic_directory(path) as tmp:
        for name, table in sorted(tables.items()):
            file_name = f"{name}.parquet"
            table = table.replace_schema_metadata(None)
            pq.write_table(
                table,
                tmp / file_name,
                compression="zstd",
                row_group_size=ROW_GROUP_ROWS,
            )
            full["tables"][name] = {
                "file": file_name,
                "rows": table.num_rows,
                "columns": table.schema.names,
                "sha256": sha256_file(tmp / file_name),
            }
        (tmp / MANIFEST_NAME).write_text(
            json.dumps(full, indent=2, sort_keys=True) + "\n"
        )
        if finish is not None:
            finish(tmp)
    return path
