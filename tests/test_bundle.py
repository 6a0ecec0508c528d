"""Bundle format: frozen versions read back, checksums, atomic writes."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DATA
from naipo_bio.bundle.read import read_bundle
from naipo_bio.bundle.write import sha256_file, write_bundle
from naipo_bio.contract import READABLE_SCHEMA_VERSIONS
from naipo_bio.errors import BundleError
from naipo_bio.merge.pool import pool_kind, site_table

FROZEN = DATA / "bundles"


@pytest.mark.parametrize("version", READABLE_SCHEMA_VERSIONS)
def test_frozen_bundle_reads_back(version):
    folder = FROZEN / f"v{version}"
    bundle = read_bundle(folder / "example.naipo")
    expected = json.loads((folder / "expected.json").read_text())
    table = bundle.table("mutation").set_index("biomarker_id")
    for biomarker, values in expected.items():
        assert table.loc[biomarker, "status"] == values["status"]
        assert table.loc[biomarker, "u"] == values["u"]
        assert table.loc[biomarker, "v"] == values["v"]
    pooled = pool_kind(site_table([bundle], "mutation"), 1).set_index("biomarker_id")
    assert pooled.loc["GENE_A", "u"] == expected["GENE_A"]["u"]


@pytest.fixture
def bundle_copy(tmp_path):
    target = tmp_path / "example.naipo"
    shutil.copytree(FROZEN / "v1.0" / "example.naipo", target)
    return target


def rewrite_table(bundle, change):
    """Change the mutation table and record its new checksum, as a careless
    editor would."""
    path = bundle / "mutation.parquet"
    table = pq.read_table(path)
    frame = change(table.to_pandas())
    pq.write_table(
        pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False), path
    )
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["tables"]["mutation"]["sha256"] = sha256_file(path)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def set_first(column, value):
    def change(frame):
        ok = frame.index[frame.status == "ok"][0]
        frame.loc[ok, column] = value
        return frame

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: pd.concat([f, f.iloc[:1]]), "appears more than once"),
        (set_first("status", "banana"), "unknown status 'banana'"),
        (set_first("n_events", -3), "a negative n_events"),
        (set_first("n_events", 10**6), "n_events larger than n"),
        (set_first("u", float("nan")), "without a finite U"),
        (set_first("u", float("inf")), "without a finite U"),
        (set_first("v", 0.0), "positive finite V"),
    ],
)
def test_impossible_table_rows_rejected(bundle_copy, change, message):
    rewrite_table(bundle_copy, change)
    with pytest.raises(BundleError, match=message):
        read_bundle(bundle_copy).table("mutation")


def test_changed_byte_rejected(bundle_copy):
    table = bundle_copy / "mutation.parquet"
    data = bytearray(table.read_bytes())
    data[len(data) // 2] ^= 0x01
    table.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum of mutation.parquet"):
        read_bundle(bundle_copy)


def test_extra_file_rejected(bundle_copy):
    (bundle_copy / "patients.csv").write_text("P001\n")
    with pytest.raises(BundleError, match="patients.csv"):
        read_bundle(bundle_copy)


def test_missing_table_rejected(bundle_copy):
    (bundle_copy / "mutation.parquet").unlink()
    with pytest.raises(BundleError, match="missing"):
        read_bundle(bundle_copy)


def test_newer_schema_version_rejected(bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["schema_version"] = "9.0"
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="schema version 9.0"):
        read_bundle(bundle_copy)


def test_manifest_not_json_rejected(bundle_copy):
    (bundle_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(bundle_copy)


def test_not_a_bundle_rejected(tmp_path):
    with pytest.raises(BundleError, match="not a bundle folder"):
        read_bundle(tmp_path / "nothing.naipo")


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "site.naipo"

    class Broken:
        def replace_schema_metadata(self, metadata):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_bundle(target, {"site_id": "s"}, {"mutation": Broken()})
    assert list(tmp_path.iterdir()) == []


def test_rewrite_replaces_whole_bundle(tmp_path):
    target = tmp_path / "site.naipo"
    table = pa.table({"a": [1]})
    write_bundle(target, {"site_id": "s"}, {"first": table})
    write_bundle(target, {"site_id": "s"}, {"second": table})
    assert sorted(p.name for p in target.iterdir()) == [
        "manifest.json",
        "second.parquet",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["site.naipo"]


def test_stale_temporaries_of_dead_process_removed(tmp_path):
    import subprocess

    from naipo_bio.io.atomic import HOST, write_text

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".out.txt.tmp-{HOST}-{dead.pid}-0000aaaa"
    stale.mkdir()
    (stale / "part").write_text("half")
    live = tmp_path / f".out.txt.tmp-{HOST}-{os.getpid()}-0000bbbb"
    live.write_text("in progress")
    remote = tmp_path / ".out.txt.tmp-otherhost-1-0000cccc"
    remote.write_text("other node")
    write_text(tmp_path / "out.txt", "done\n")
    assert not stale.exists()
    assert live.exists()
    assert remote.exists()
    assert (tmp_path / "out.txt").read_text() == "done\n"
