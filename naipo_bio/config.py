"""Configuration: validation against the schema, defaults, and the analysis hash."""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from naipo_bio.errors import ConfigError

SCHEMA_FILE = "config.schema.yaml"


def load_schema() -> dict[str, Any]:
    """Return the configuration JSON schema shipped with the package."""
    text = resources.files("naipo_bio.schemas").joinpath(SCHEMA_FILE).read_text()
    return yaml.safe_load(text)


def _resolve_local_ref(root: dict[str, Any], ref: str) -> dict[str, Any]:
    """Follow a reference of the form ``#/definitions/name`` within ``root``."""
    if not ref.startswith("#/"):
        raise ConfigError(f"Only local schema references are supported, not {ref!r}.")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _validator_with_defaults(root: dict[str, Any]):
    """A Draft 7 validator that fills in ``default`` values while validating."""
    base = jsonschema.Draft7Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "$ref" in subschema:
                    subschema = _resolve_local_ref(root, subschema["$ref"])
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def validate_config(config: dict[str, Any], source: str = "configuration") -> dict:
    """Validate ``config`` in place, fill in defaults, and return it.

    Raises
    ------
    ConfigError
        Naming the offending key and what the schema allows.
    """
    schema = load_schema()
    validator = _validator_with_defaults(schema)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.path))
    if errors:
        lines = []
        for error in errors[:10]:
            where = "/".join(str(p) for p in error.path) or "(top level)"
            lines.append(f"  {where}: {error.message}")
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ConfigError(f"Invalid {source}:\n" + "\n".join(lines) + more)
    _add_demo_sites(config)
    _check_consistency(config, source)
    return config


def _add_demo_sites(config: dict[str, Any]) -> None:
    demo = config.get("demo", {})
    if not demo.get("enabled"):
        return
    from naipo_bio.demo import default_resources, demo_module

    if demo.get("resources") is None:
        demo["resources"] = default_resources(demo["dataset"])
    if not config["sites"]:
        module = demo_module(demo["dataset"])
        config["sites"] = module.demo_sites(config["outdir"], demo["n_sites"])
        _add_demo_keys(config)
        validate_config(config, "the demo configuration")


def _add_demo_keys(config: dict[str, Any]) -> None:
    """Point the demo's sites at the keys, registry and universe its rules make."""
    keys = f"{config['outdir']}/demo/keys"
    secure = config["analysis"]["secure"]
    if secure["enabled"] and not secure["participants"]:
        secure["participants"] = list(config["sites"])
    if not (config["demo"]["sign"] or secure["enabled"]):
        return
    registry = f"{keys}/registry.yaml"
    for site_id, site in config["sites"].items():
        if config["demo"]["sign"]:
            site["signing"] = {"private_key": f"{keys}/{site_id}/signing_key.pem"}
        if secure["enabled"]:
            site["secure"] = {
                "universe": f"{config['outdir']}/demo/universe.tsv",
                "registry": registry,
                "agreement_key": f"{keys}/{site_id}/agreement_key.pem",
            }
    config["merge"]["registry"] = registry
    config["merge"]["require_signatures"] = bool(config["demo"]["sign"])


def _check_consistency(config: dict[str, Any], source: str) -> None:
    for site_id, site in config.get("sites", {}).items():
        somatic = site.get("somatic")
        if somatic is not None:
            has_vcf = "vcf" in somatic
            has_maf = "maf" in somatic
            if has_vcf == has_maf:
                raise ConfigError(
                    f"Invalid {source}: sites/{site_id}/somatic needs exactly one of "
                    "'vcf' or 'maf'."
                )
        clinical = site["clinical"]
        if clinical.get("time_unit") is None and "time_unit" not in clinical.get(
            "columns", {}
        ):
            raise ConfigError(
                f"Invalid {source}: sites/{site_id}/clinical declares no time unit. "
                "Set time_unit (days, weeks, months or years), or map a time_unit "
                "column under columns."
            )
    secure = config["analysis"].get("secure", {})
    if secure.get("enabled") and config["analysis"]["km"]["enabled"]:
        raise ConfigError(
            f"Invalid {source}: the Kaplan-Meier round needs per-site cut points and "
            "counts, which secure aggregation does not release. Set analysis.km."
            "enabled: false, or run the Kaplan-Meier round as a separate plain "
            "analysis."
        )
    if secure.get("enabled") and len(secure.get("participants") or []) == 1:
        raise ConfigError(
            f"Invalid {source}: secure aggregation needs at least two participants; "
            "with one the 'sum' is that site's own values."
        )
    names = [c["name"] for c in config["analysis"].get("covariates", [])]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"Invalid {source}: covariate names repeated: {duplicated}.")


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML configuration file, validate it and fill in defaults."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"Configuration file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} must contain a YAML mapping at the top level.")
    return validate_config(config, source=str(path))


def analysis_hash(analysis: dict[str, Any]) -> str:
    """SHA-256 of the analysis settings in canonical JSON ("sha256:<hex>")."""
    canonical = json.dumps(analysis, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
