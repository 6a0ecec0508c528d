"""Site keys and the consortium's key registry.

Each site holds two key pairs: Ed25519 to sign its bundles, and X25519 to agree
pairwise mask keys for secure aggregation. Private keys stay at the site (PEM,
file mode 600); the public halves go into one registry file that the
consortium distributes to every site and to the coordinator:

    sites:
      site1:
        signing: <base64 raw Ed25519 public key>
        agreement: <base64 raw X25519 public key>
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from naipo_bio.errors import ConfigError
from naipo_bio.io.atomic import atomic_file, write_text

SIGNING_FILE = "signing_key.pem"
AGREEMENT_FILE = "agreement_key.pem"


def _raw_public(key) -> str:
    raw = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode()


def _write_private(path: Path, key) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with atomic_file(path) as tmp:
        tmp.write_bytes(pem)
        os.chmod(tmp, 0o600)


def generate_keys(site_id: str, folder: str | Path) -> dict[str, str]:
    """Write a site's private keys into ``folder`` and return its registry entry."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (SIGNING_FILE, AGREEMENT_FILE):
        if (folder / name).exists():
            raise ConfigError(
                f"{folder / name} exists; keygen never overwrites a key. Remove it "
                "first to replace the site's keys (and update the registry)."
            )
    signing = Ed25519PrivateKey.generate()
    agreement = X25519PrivateKey.generate()
    _write_private(folder / SIGNING_FILE, signing)
    _write_private(folder / AGREEMENT_FILE, agreement)
    entry = {"signing": _raw_public(signing), "agreement": _raw_public(agreement)}
    write_text(folder / "public.yaml", yaml.safe_dump({"sites": {site_id: entry}}))
    return entry


def load_private(path: str | Path, kind: str):
    """Read a PEM private key of the given kind ("signing" or "agreement")."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"The {kind} key was not found: {path}")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{path} is not a readable unencrypted PEM private key ({exc}). Point "
            f"the config at the {kind} key written by 'naipo-bio keygen'."
        ) from None
    expected = Ed25519PrivateKey if kind == "signing" else X25519PrivateKey
    if not isinstance(key, expected):
        raise ConfigError(f"{path} is not an {expected.__name__[:-10]} private key.")
    return key


def read_registry(path: str | Path) -> dict[str, dict[str, Any]]:
    """Site id -> {signing: Ed25519PublicKey, agreement: X25519PublicKey}."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"The key registry was not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{path}: the key registry is not valid YAML ({exc}). Rebuild it with "
            "'naipo-bio registry' from the sites' public.yaml files."
        ) from None
    sites = data.get("sites") if isinstance(data, dict) else None
    if not isinstance(sites, dict) or not sites:
        raise ConfigError(f"{path}: the registry needs a 'sites' mapping.")
    registry = {}
    for site, entry in sites.items():
        try:
            registry[str(site)] = {
                "signing": Ed25519PublicKey.from_public_bytes(
                    base64.b64decode(entry["signing"])
                ),
                "agreement": X25519PublicKey.from_public_bytes(
                    base64.b64decode(entry["agreement"])
                ),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{path}: the entry of site {site!r} is invalid ({exc})."
            ) from None
    return registry


def registry_digest(path: str | Path) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def merge_registries(parts: list[str | Path], out: str | Path) -> Path:
    """Combine the sites' public.yaml files into one registry."""
    sites: dict[str, Any] = {}
    for part in parts:
        data = yaml.safe_load(Path(part).read_text()) or {}
        for site, entry in (data.get("sites") or {}).items():
            if site in sites and sites[site] != entry:
                raise ConfigError(f"Site {site!r} appears with two different keys.")
            sites[site] = entry
    return write_text(out, yaml.safe_dump({"sites": dict(sorted(sites.items()))}))
