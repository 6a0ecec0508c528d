"""Signing bundles and verifying them against the consortium registry.

The signature covers the exact bytes of ``manifest.json``, and the manifest
records the SHA-256 of every table, the site id, the analysis id and the hash
of the analysis settings. A verified bundle therefore comes from the site it
names, is unchanged, and belongs to the analysis the coordinator expects.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from naipo_bio.bundle.read import Bundle
from naipo_bio.config import analysis_hash
from naipo_bio.contract import MANIFEST_NAME, SIGNATURE_NAME
from naipo_bio.errors import BundleError
from naipo_bio.io.atomic import write_text
from naipo_bio.security.keys import load_private, read_registry

ALGORITHM = "Ed25519"

log = logging.getLogger(__name__)


def sign_bundle(bundle_path: str | Path, private_key, site_id: str) -> Path:
    """Write ``signature.json`` for the bundle's manifest.

    ``private_key`` is an Ed25519 private key or the path of its PEM file.
    """
    bundle_path = Path(bundle_path)
    key = (
        private_key
        if isinstance(private_key, Ed25519PrivateKey)
        else load_private(private_key, "signing")
    )
    manifest = (bundle_path / MANIFEST_NAME).read_bytes()
    signature = {
        "algorithm": ALGORITHM,
        "site_id": site_id,
        "signature": base64.b64encode(key.sign(manifest)).decode(),
    }
    return write_text(
        bundle_path / SIGNATURE_NAME, json.dumps(signature, indent=2) + "\n"
    )


def verify_bundle(
    bundle: Bundle, registry: dict, analysis_id: str | None, config_hash: str | None
) -> None:
    """Raise BundleError unless the bundle is signed by its site's registered key
    and belongs to the expected analysis."""
    site = bundle.site_id
    path = bundle.path / SIGNATURE_NAME
    if not path.exists():
        raise BundleError(
            f"{bundle.path}: the bundle is not signed, and the merge requires "
            f"signatures. Ask site {site!r} to set signing.private_key and rerun."
        )
    try:
        signature = json.loads(path.read_text())
        raw = base64.b64decode(signature["signature"], validate=True)
    except (json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        raise BundleError(
            f"{path}: unreadable signature ({type(exc).__name__}: {exc}). Ask the "
            "site to send the bundle again."
        ) from None
    if not isinstance(signature, dict):
        raise BundleError(f"{path}: the signature file is not a JSON object.")
    if signature.get("algorithm") != ALGORITHM:
        raise BundleError(f"{path}: unsupported signature algorithm.")
    if site not in registry:
        raise BundleError(
            f"{bundle.path}: site {site!r} is not in the key registry; add its public "
            "keys to the registry before merging its bundle."
        )
    manifest = (bundle.path / MANIFEST_NAME).read_bytes()
    try:
        registry[site]["signing"].verify(raw, manifest)
    except InvalidSignature:
        raise BundleError(
            f"{bundle.path}: the signature does not verify with the key registered "
            f"for site {site!r}: the manifest was changed after signing, or the bundle "
            "was signed by another key. Do not merge it; ask the site to send it "
            "again."
        ) from None
    if signature.get("site_id") != site:
        raise BundleError(
            f"{path}: the signature names site {signature.get('site_id')!r}."
        )
    check_analysis(bundle, analysis_id, config_hash)


def check_analysis(
    bundle: Bundle, analysis_id: str | None, config_hash: str | None
) -> None:
    """Raise BundleError if the bundle belongs to another analysis."""
    if analysis_id is not None and bundle.manifest["analysis_id"] != analysis_id:
        raise BundleError(
            f"{bundle.path}: the bundle belongs to analysis "
            f"{bundle.manifest['analysis_id']!r}, not {analysis_id!r}; a bundle cannot "
            "be replayed into another analysis."
        )
    if config_hash is not None and bundle.manifest["config_hash"] != config_hash:
        raise BundleError(
            f"{bundle.path}: the bundle was computed with other analysis settings "
            f"({bundle.manifest['config_hash']}) than this merge expects "
            f"({config_hash}); a bundle cannot be replayed into another analysis."
        )


def verify_all(
    bundles: list[Bundle],
    registry: str | Path | None,
    require: bool = False,
    expected_analysis: dict | None = None,
) -> None:
    """Verify every bundle's signature against the registry file (when given)
    and check that each belongs to the expected analysis (when given)."""
    analysis_id = expected_analysis["id"] if expected_analysis else None
    config_hash = analysis_hash(expected_analysis) if expected_analysis else None
    if registry is None:
        if require:
            raise BundleError("require_signatures is set but no key registry is named.")
        for bundle in bundles:
            check_analysis(bundle, analysis_id, config_hash)
        return
    keys = read_registry(registry)
    for bundle in bundles:
        if not (bundle.path / SIGNATURE_NAME).exists() and not require:
            log.warning("%s is not signed", bundle.path)
            check_analysis(bundle, analysis_id, config_hash)
            continue
        verify_bundle(bundle, keys, analysis_id, config_hash)
    log.info("signatures of %d bundle(s) verified", len(bundles))
