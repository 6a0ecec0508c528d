"""Signed bundles and secure aggregation on the TCGA ACC demo.

The plain demo run (conftest) signs its bundles. Here the same three sites run
again in secure mode. Every rejection the merge must make is then provoked: a
changed byte, a swapped or foreign signature, a bundle replayed into another
analysis, a missing participant.
"""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare

from conftest import DEMO_RESOURCES, REPO
from naipo_bio.bundle.read import read_bundle
from naipo_bio.config import load_config, validate_config
from naipo_bio.contract import SECURE_TABLE, SECURE_WORDS, SIGNATURE_NAME
from naipo_bio.demo.tcga_acc import universe
from naipo_bio.errors import BundleError, ConfigError, MergeError, NaipoError
from naipo_bio.merge.run import run_merge
from naipo_bio.security.keys import generate_keys, read_registry
from naipo_bio.security.secure import EXACT, encode, write_universe
from naipo_bio.security.signing import sign_bundle, verify_all
from naipo_bio.site.run import finish_bundle, run_site


@pytest.fixture(scope="module")
def secure_run(demo_run):
    """The demo's three sites in secure mode, reusing the plain run's inputs
    and keys; returns the config, bundle paths and merge folder."""
    config = load_config(REPO / "config" / "secure.yaml")
    config["outdir"] = str(demo_run.outdir)
    config["sites"] = {}
    validate_config(config)
    write_universe(universe(DEMO_RESOURCES), demo_run.outdir / "demo" / "universe.tsv")
    out = demo_run.outdir / "secure"
    bundles = []
    for site in config["sites"]:
        bundle = out / "bundles" / f"{site}.naipo"
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            run_site(site, config, bundle, out / "sites" / site, threads=2)
        bundles.append(bundle)
    merge = out / "merge"
    run_merge(
        bundles, merge, top_hits=3, registry=config["merge"]["registry"],
        require_signatures=True, expected_analysis=config["analysis"],
    )  # fmt: skip
    return config, bundles, merge


def words(bundle: Path) -> np.ndarray:
    return read_bundle(bundle).table(SECURE_TABLE)[SECURE_WORDS].to_numpy(np.uint64)


def byte_uniformity_p(values: np.ndarray) -> float:
    """Chi-square p-value of all eight bytes of the words against uniform."""
    counts = np.bincount(values.ravel().view(np.uint8), minlength=256)
    return float(chisquare(counts).pvalue)


# --- secure aggregation -----------------------------------------------------


@pytest.mark.parametrize("kind", ["mutation", "expression"])
def test_secure_pooled_tests_equal_plain(demo_run, secure_run, kind):
    _, _, merge = secure_run
    plain = pd.read_csv(demo_run.merge_dir / "tables" / f"associations.{kind}.tsv",
                        sep="\t", index_col="biomarker_id")  # fmt: skip
    secure = pd.read_csv(merge / "tables" / f"associations.{kind}.tsv", sep="\t",
                         index_col="biomarker_id")  # fmt: skip
    plain = plain.loc[plain.n_sites_tested > 0]
    assert sorted(plain.index) == sorted(secure.index)
    secure = secure.loc[plain.index]
    for column in ("u", "v", "z", "p", "q", "log_hr_onestep", "se_onestep"):
        np.testing.assert_allclose(secure[column], plain[column], rtol=1e-9, atol=0)
    for column in ("n", "n_events", "n_sites_tested"):
        np.testing.assert_array_equal(secure[column], plain[column])
    assert secure.het_q.isna().all()
    assert secure.log_hr_re.isna().all()
    # Gene labels as in the plain table; events among carriers unknown, since
    # a masked sum cannot tell a withheld small count from a zero.
    assert secure.gene.fillna("").tolist() == plain.gene.fillna("").tolist()
    assert secure.n_carrier_events.isna().all()
    if kind == "mutation":
        np.testing.assert_array_equal(secure.n_carriers, plain.n_carriers)
    else:
        assert secure.n_carriers.isna().all()


def test_secure_merge_marks_unavailable_outputs(secure_run):
    _, _, merge = secure_run
    summary = json.loads((merge / "summary.json").read_text())
    assert summary["mode"] == "secure aggregation"
    assert any("unavailable" in note for note in summary["notes"])
    assert not list((merge / "tables").glob("site_estimates.*"))
    assert not list((merge / "plots").glob("forest*"))


def test_single_masked_bundle_is_uniform(secure_run):
    _, bundles, _ = secure_run
    for bundle in bundles:
        assert byte_uniformity_p(words(bundle)) > 1e-6
    # The same test flags the unmasked encoding at once, so it can fail.
    table = read_bundle(bundles[0]).table(SECURE_TABLE)
    plain = encode(np.full((len(table), len(EXACT)), 3.0), EXACT)
    assert byte_uniformity_p(plain) < 1e-100


def test_proper_subset_sums_are_uniform(secure_run):
    _, bundles, _ = secure_run
    for size in range(1, len(bundles)):
        for subset in combinations(bundles, size):
            total = sum(words(b) for b in subset)
            assert byte_uniformity_p(total) > 1e-6, subset
            # Each word is also uniform by itself: compare column means.
            top = (total >> np.uint64(56)).astype(float)
            assert np.all(np.abs(top.mean(axis=0) - 127.5) < 3.0)


def test_full_sum_decodes_the_plain_totals(secure_run):
    _, bundles, _ = secure_run
    total = sum(words(b) for b in bundles)
    counts = total[:, SECURE_WORDS.index("n")].view(np.int64)
    assert counts.min() >= 0
    assert counts.max() <= 77


def test_missing_participant_named_with_fix(secure_run, tmp_path):
    config, bundles, _ = secure_run
    with pytest.raises(MergeError) as error:
        run_merge(bundles[:2], tmp_path / "merge", report=False)
    message = str(error.value)
    assert "'site3'" in message
    assert "analysis.secure.participants: ['site1', 'site2']" in message


def test_mixed_modes_rejected(demo_run, secure_run, tmp_path):
    _, bundles, _ = secure_run
    with pytest.raises(MergeError, match="analysis|mode"):
        run_merge([demo_run.bundles[0], *bundles[1:]], tmp_path / "m", report=False)


def test_site_outside_participants_rejected(secure_run, tmp_path):
    config = copy.deepcopy(secure_run[0])
    config["analysis"]["secure"]["participants"] = ["site2", "site3"]
    with pytest.raises(ConfigError, match="not among analysis.secure.participants"):
        run_site("site1", config, tmp_path / "b.naipo", tmp_path / "r")
    assert not (tmp_path / "b.naipo").exists()


def test_secure_and_km_round_cannot_be_combined():
    config = load_config(REPO / "config" / "secure.yaml")
    config["analysis"]["km"]["enabled"] = True
    with pytest.raises(ConfigError, match="Kaplan-Meier"):
        validate_config(config)


# --- signatures -------------------------------------------------------------


def registry_of(config):
    return config["merge"]["registry"]


def copy_bundle(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / bundle.name
    shutil.copytree(bundle, target)
    return target


def is_rejected(bundle: Path, config, expected=None) -> bool:
    """True if opening and verifying the bundle raises a naipo error."""
    try:
        verify_all([read_bundle(bundle)], registry_of(config), True, expected)
    except NaipoError:
        return True
    return False


def test_signed_bundles_verify(demo_run, secure_run):
    for config, bundles in ((demo_run.config, demo_run.bundles), secure_run[:2]):
        for bundle in bundles:
            assert not is_rejected(bundle, config, config["analysis"])


def test_every_changed_byte_is_rejected(demo_run, tmp_path):
    bundle = copy_bundle(demo_run.bundles[0], tmp_path)
    rng = np.random.default_rng(5)
    for file in sorted(bundle.iterdir()):
        original = file.read_bytes()
        if file.suffix == ".parquet":
            size = len(original)
            edges = np.r_[0:8, size - 8 : size]
            positions = np.unique(np.r_[edges, rng.integers(0, size, 48)])
        else:
            positions = np.arange(len(original))
        for position in positions:
            changed = bytearray(original)
            changed[position] ^= 0x01
            file.write_bytes(bytes(changed))
            assert is_rejected(bundle, demo_run.config), f"{file.name} byte {position}"
        file.write_bytes(original)
    assert not is_rejected(bundle, demo_run.config)


def test_swapped_signature_is_rejected(demo_run, tmp_path):
    one = copy_bundle(demo_run.bundles[0], tmp_path)
    two = demo_run.bundles[1]
    shutil.copy(two / SIGNATURE_NAME, one / SIGNATURE_NAME)
    with pytest.raises(BundleError, match="does not verify"):
        verify_all([read_bundle(one)], registry_of(demo_run.config), True)


def test_bundle_signed_by_another_site_is_rejected(demo_run, tmp_path):
    bundle = copy_bundle(demo_run.bundles[0], tmp_path)
    other_key = Path(demo_run.config["sites"]["site2"]["signing"]["private_key"])
    sign_bundle(bundle, other_key, "site1")
    with pytest.raises(BundleError, match="key registered for site 'site1'"):
        verify_all([read_bundle(bundle)], registry_of(demo_run.config), True)


def test_site_missing_from_registry_is_rejected(demo_run, tmp_path):
    registry = tmp_path / "registry.yaml"
    text = Path(registry_of(demo_run.config)).read_text()
    data = __import__("yaml").safe_load(text)
    del data["sites"]["site1"]
    registry.write_text(__import__("yaml").safe_dump(data))
    assert set(read_registry(registry)) == {"site2", "site3"}
    with pytest.raises(BundleError, match="not in the key registry"):
        verify_all([read_bundle(demo_run.bundles[0])], registry, True)


def test_unsigned_bundle_rejected_when_signatures_required(demo_run, tmp_path):
    bundle = copy_bundle(demo_run.bundles[0], tmp_path)
    (bundle / SIGNATURE_NAME).unlink()
    with pytest.raises(BundleError, match="not signed"):
        verify_all([read_bundle(bundle)], registry_of(demo_run.config), True)


def test_replay_into_another_analysis_is_rejected(demo_run, secure_run):
    config, bundles, _ = secure_run
    plain_bundle = demo_run.bundles[0]
    with pytest.raises(BundleError, match="belongs to analysis 'tcga-acc-demo'"):
        verify_all([read_bundle(plain_bundle)], registry_of(config), True,
                   config["analysis"])  # fmt: skip
    same_id = copy.deepcopy(demo_run.config["analysis"])
    same_id["ties"] = "efron"
    with pytest.raises(BundleError, match="other analysis settings"):
        verify_all([read_bundle(plain_bundle)], registry_of(config), True, same_id)


def test_replay_rejected_by_the_merge_itself(demo_run, secure_run, tmp_path):
    config, _, _ = secure_run
    with pytest.raises(BundleError, match="replayed"):
        run_merge(demo_run.bundles, tmp_path / "m", registry=registry_of(config),
                  expected_analysis=config["analysis"], report=False)  # fmt: skip
    assert not (tmp_path / "m" / "summary.json").exists()


# --- what leaves the site ---------------------------------------------------


@pytest.fixture(scope="module")
def km_bundle(demo_run, tmp_path_factory):
    """The bundle site 1 returns for the plain demo's Kaplan-Meier request."""
    from naipo_bio.site.km import run_site_km

    out = tmp_path_factory.mktemp("km") / "site1.km.naipo"
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        return run_site_km("site1", demo_run.config,
                           demo_run.merge_dir / "km_request.tsv", out)  # fmt: skip


def test_no_identifier_in_secure_or_km_bundles(secure_run, km_bundle):
    from test_demo import assert_no_identifier

    assert_no_identifier([*secure_run[1], km_bundle])


def test_km_bundle_holds_grid_times_only(demo_run, km_bundle):
    bundle = read_bundle(km_bundle)
    width = demo_run.config["analysis"]["km"]["width_days"]
    times = bundle.table("km").time.to_numpy(float)
    assert len(times) > 0
    np.testing.assert_array_equal(times % width, 0)
    assert not is_rejected(km_bundle, demo_run.config, demo_run.config["analysis"])


def test_every_bundle_has_release_listing(demo_run, secure_run, km_bundle):
    from naipo_bio.bundle.inspect import describe

    for bundle in [*demo_run.bundles, *secure_run[1], km_bundle]:
        text = describe(bundle)
        manifest = read_bundle(bundle).manifest
        for entry in manifest["tables"].values():
            assert f"{entry['file']}: {entry['rows']} rows" in text
        assert "Disclosure policy in force" in text
        assert "min_site_patients: 10" in text
        assert "signature of the manifest" in text
    text = describe(demo_run.bundles[0])
    assert "What was withheld and why" in text
    assert "fewer than 3 carriers" in text


def test_changed_values_under_a_used_round_are_rejected(tmp_path):
    from naipo_bio.errors import DisclosureError
    from naipo_bio.site.secure import check_round_unused

    ledger = tmp_path / "secure_rounds.json"
    values = np.arange(12.0).reshape(4, 3)
    check_round_unused(ledger, "study|hash|round 1", values)
    check_round_unused(ledger, "study|hash|round 1", values.copy())
    changed = values.copy()
    changed[2, 1] += 1e-9
    with pytest.raises(DisclosureError, match="raise analysis.secure.round"):
        check_round_unused(ledger, "study|hash|round 1", changed)
    check_round_unused(ledger, "study|hash|round 2", changed)


@pytest.mark.parametrize("key_text", [None, "not a key", "wrong type"])
def test_bad_signing_key_leaves_signed_bundle_in_place(demo_run, tmp_path, key_text):
    """The site stage reads the key before it writes: a missing, malformed or
    wrong-type key stops it, and an earlier signed bundle stays untouched."""
    bundle = tmp_path / "site1.naipo"
    shutil.copytree(demo_run.bundles[0], bundle)
    before = {p.name: p.read_bytes() for p in bundle.iterdir() if p.is_file()}
    key = tmp_path / "signing_key.pem"
    if key_text == "wrong type":
        generate_keys("site1", tmp_path / "keys")
        key = tmp_path / "keys" / "agreement_key.pem"
    elif key_text is not None:
        key.write_text(key_text)
    manifest = {"site_id": "site1", "analysis_id": "x"}
    with pytest.raises(ConfigError, match="signing_key.pem|agreement_key.pem"):
        finish_bundle(bundle, manifest, {}, {"signing": {"private_key": str(key)}})
    after = {p.name: p.read_bytes() for p in bundle.iterdir() if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir() if "naipo" in p.name) == [
        "site1.naipo"
    ]
