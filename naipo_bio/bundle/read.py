"""Reading and verifying a summary bundle."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import yaml

from naipo_bio.bundle.write import sha256_file
from naipo_bio.contract import (
    BUNDLE_FORMAT,
    COUNT_COLUMNS,
    KINDS,
    MANIFEST_NAME,
    READABLE_SCHEMA_VERSIONS,
    SIGNATURE_NAME,
    STATUS_OK,
    STATUSES,
    table_schema,
)
from naipo_bio.errors import BundleError

#: Files a bundle may hold beside what its manifest lists: Snakemake writes an
#: empty timestamp file into every folder output.
TOLERATED_FILES = (".snakemake_timestamp",)


@lru_cache(maxsize=1)
def _manifest_validator() -> jsonschema.Draft7Validator:
    text = resources.files("naipo_bio.schemas").joinpath("manifest.schema.yaml")
    return jsonschema.Draft7Validator(yaml.safe_load(text.read_text()))


def _check_manifest_shape(manifest: dict, path: Path) -> None:
    error = next(iter(_manifest_validator().iter_errors(manifest)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise BundleError(
            f"{path}: the manifest is malformed at {where}: {error.message[:200]}. "
            "The bundle was damaged or edited after the site wrote it; ask the "
            "site to send it again."
        )


@dataclass
class Bundle:
    """A verified bundle: its manifest and lazy access to its tables."""

    path: Path
    manifest: dict[str, Any]

    @property
    def site_id(self) -> str:
        return str(self.manifest["site_id"])

    @property
    def kinds(self) -> list[str]:
        return [k for k in self.manifest["tables"] if k in KINDS]

    def table(self, name: str) -> pd.DataFrame:
        entry = self.manifest["tables"][name]
        frame = pq.read_table(self.path / entry["file"]).to_pandas()
        if name in KINDS:
            check_association_rows(frame, f"{self.path} table {name!r}")
        return frame


def check_association_rows(frame: pd.DataFrame, where: str) -> None:
    """Reject values no site stage writes: unknown statuses, negative or
    inconsistent counts, non-finite scores of tested rows, repeated ids."""
    problems = []
    repeated = frame.biomarker_id[frame.biomarker_id.duplicated()]
    if len(repeated):
        problems.append(f"biomarker id {repeated.iloc[0]!r} appears more than once")
    unknown = sorted(set(frame.status) - set(STATUSES))
    if unknown:
        problems.append(f"unknown status {unknown[0]!r}")
    for column in COUNT_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce")
        if (values < 0).any():
            problems.append(f"a negative {column}")
        if column != "n" and (values > pd.to_numeric(frame["n"])).any():
            problems.append(f"{column} larger than n")
    tested = frame.loc[frame.status == STATUS_OK]
    u = tested.u.to_numpy(dtype=float)
    v = tested.v.to_numpy(dtype=float)
    if not (np.isfinite(u).all() and np.isfinite(v).all() and (v > 0).all()):
        problems.append("a tested row without a finite U or a positive finite V")
    if problems:
        raise BundleError(
            f"{where}: {'; '.join(problems)}. No site stage writes such rows, so the "
            "table was changed after it was written; ask the site to send the "
            "bundle again."
        )


def read_bundle(path: str | Path) -> Bundle:
    """Open a bundle and verify its format, version and every checksum.

    Raises
    ------
    BundleError
        Naming the bundle and what is wrong with it.
    """
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: not a bundle folder (expected a *.naipo folder).")
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleError(f"{path}: no {MANIFEST_NAME}; the bundle is incomplete.")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: the manifest is not a {BUNDLE_FORMAT!r} manifest.")
    _check_manifest_shape(manifest, path)
    version = str(manifest["schema_version"])
    if version not in READABLE_SCHEMA_VERSIONS:
        raise BundleError(
            f"{path}: schema version {version} is not readable by this naipo-bio "
            f"(reads {', '.join(READABLE_SCHEMA_VERSIONS)}). Upgrade naipo-bio, or "
            "ask the site to rerun with the consortium's version."
        )
    expected_files = {MANIFEST_NAME, SIGNATURE_NAME, *TOLERATED_FILES}
    for name, entry in manifest["tables"].items():
        file_path = path / entry["file"]
        expected_files.add(entry["file"])
        if not file_path.is_file():
            raise BundleError(f"{path}: table {name!r} ({entry['file']}) is missing.")
        if sha256_file(file_path) != entry["sha256"]:
            raise BundleError(
                f"{path}: the checksum of {entry['file']} does not match the "
                "manifest; the file was changed or damaged after the site wrote it. "
                "Ask the site to send the bundle again."
            )
        expected = table_schema(name)
        if expected is None:
            raise BundleError(
                f"{path}: unknown table {name!r} (this naipo-bio reads "
                f"{sorted(KINDS)} and the variant, gene, histogram and km tables)."
            )
        if not pq.read_schema(file_path).remove_metadata().equals(expected):
            raise BundleError(
                f"{path}: table {name!r} does not have the schema of format "
                f"version {version}."
            )
    extra = sorted(p.name for p in path.iterdir() if p.name not in expected_files)
    if extra:
        raise BundleError(
            f"{path}: unexpected file(s) {extra} in the bundle; a bundle holds only "
            "what its manifest lists."
        )
    return Bundle(path=path, manifest=manifest)
