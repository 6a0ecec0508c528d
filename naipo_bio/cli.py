"""The ``naipo-bio`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from naipo_bio import __version__
from naipo_bio.contract import KINDS
from naipo_bio.errors import NaipoError

log = logging.getLogger("naipo_bio")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.captureWarnings(True)


def _cmd_site(args) -> None:
    from naipo_bio.config import load_config
    from naipo_bio.site.run import run_site

    config = load_config(args.config)
    path = run_site(args.site, config, args.out, args.report_dir, args.threads)
    log.info("bundle written: %s", path)


def _cmd_merge(args) -> None:
    from naipo_bio.merge.run import run_merge

    settings = {
        "min_pooled_mac": args.min_pooled_mac,
        "rare_maf": args.rare_maf,
        "ambiguous_max_maf": args.ambiguous_max_maf,
        "reference_sites": args.reference_sites,
    }
    expected = None
    if args.config:
        from naipo_bio.config import load_config

        expected = load_config(args.config)["analysis"]
    summary = run_merge(
        args.bundles, args.out, top_hits=args.top_hits, fdr=args.fdr,
        variant_settings=settings, registry=args.registry,
        require_signatures=args.require_signatures, expected_analysis=expected,
    )  # fmt: skip
    log.info("merge written to %s (%s)", args.out, summary["test"])


def _cmd_site_km(args) -> None:
    from naipo_bio.config import load_config
    from naipo_bio.site.km import run_site_km

    config = load_config(args.config)
    path = run_site_km(args.site, config, args.request, args.out)
    log.info("Kaplan-Meier bundle written: %s", path)


def _cmd_merge_km(args) -> None:
    from naipo_bio.merge.km import run_merge_km

    run_merge_km(
        args.bundles,
        args.merge_dir,
        args.request or Path(args.merge_dir) / "km_request.tsv",
    )
    log.info("Kaplan-Meier results written to %s/km", args.merge_dir)


def _cmd_demo_inputs(args) -> None:
    from naipo_bio.demo import default_resources, demo_module

    resources = Path(args.resources or default_resources(args.dataset))
    module = demo_module(args.dataset)
    paths = module.prepare_site(resources, args.site, args.n_sites, Path(args.out))
    log.info(
        "demo inputs of site %d: %s", args.site, ", ".join(map(str, paths.values()))
    )


def _cmd_universe(args) -> None:
    from naipo_bio.errors import ConfigError
    from naipo_bio.security.secure import universe_from_lists, write_universe

    if args.demo:
        from naipo_bio.demo import default_resources, demo_module

        module = demo_module(args.demo)
        if not hasattr(module, "universe"):
            raise ConfigError(
                f"The {args.demo} demo has germline variants only, which secure "
                "aggregation does not cover."
            )
        frame = module.universe(Path(args.resources or default_resources(args.demo)))
    else:
        lists = {}
        for item in args.lists:
            kind, sep, path = item.partition("=")
            if not sep or kind not in KINDS:
                raise ConfigError(
                    f"{item!r}: give each list as KIND=FILE with KIND one of "
                    f"{', '.join(KINDS)}."
                )
            lists[kind] = path
        if not lists:
            raise ConfigError("Name at least one KIND=FILE id list, or --demo.")
        frame = universe_from_lists(lists)
    write_universe(frame, args.out)
    log.info("universe of %d biomarkers written to %s", len(frame), args.out)


def _cmd_inspect(args) -> None:
    from naipo_bio.bundle.inspect import describe
    from naipo_bio.io.atomic import write_text

    text = describe(args.bundle)
    if args.out:
        write_text(args.out, text)
        log.info("release listing written to %s", args.out)
    else:
        print(text, end="")


def _cmd_keygen(args) -> None:
    from naipo_bio.security.keys import generate_keys

    generate_keys(args.site, args.out)
    log.info(
        "keys of %s written to %s; send %s/public.yaml to the consortium, keep the "
        "*.pem files at the site", args.site, args.out, args.out,
    )  # fmt: skip


def _cmd_registry(args) -> None:
    from naipo_bio.security.keys import merge_registries

    merge_registries(args.public, args.out)
    log.info("registry of %d site file(s) written to %s", len(args.public), args.out)


def _cmd_check_config(args) -> None:
    from naipo_bio.config import analysis_hash, load_config

    config = load_config(args.config)
    sites = ", ".join(config["sites"]) or "none"
    print(f"{args.config}: valid. Sites: {sites}.")
    print(f"analysis {config['analysis']['id']}: {analysis_hash(config['analysis'])}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="naipo-bio",
        description="Federated biomarker-survival association tests.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    site = commands.add_parser(
        "site", help="run the site stage on this hospital's data and write a bundle"
    )
    site.add_argument("--config", required=True, help="YAML configuration file")
    site.add_argument("--site", required=True, help="site id (a key of sites:)")
    site.add_argument("--out", required=True, help="bundle folder to write (*.naipo)")
    site.add_argument(
        "--report-dir",
        help="folder for the join report (lists patient ids; stays at the site)",
    )
    site.add_argument("--threads", type=int, help="threads of the numba kernels")
    site.set_defaults(func=_cmd_site)

    merge = commands.add_parser(
        "merge", help="pool site bundles into association tests"
    )
    merge.add_argument("bundles", nargs="+", help="bundle folders, one per site")
    merge.add_argument("--out", required=True, help="output folder")
    merge.add_argument(
        "--top-hits", type=int, default=5, help="forest plots per biomarker kind"
    )
    merge.add_argument(
        "--fdr", type=float, default=0.05, help="BH q threshold to report"
    )
    merge.add_argument(
        "--min-pooled-mac", type=float, default=10.0,
        help="flag single-variant tests below this pooled minor allele count",
    )  # fmt: skip
    merge.add_argument(
        "--rare-maf", type=float, default=0.01,
        help="pooled MAF at or below which variants enter gene tests",
    )  # fmt: skip
    merge.add_argument(
        "--ambiguous-max-maf", type=float, default=0.4,
        help="drop A/T and C/G variants with a higher pooled MAF",
    )  # fmt: skip
    merge.add_argument(
        "--reference-sites", help="VCF or TSV with the reference REF/ALT of variants"
    )
    merge.add_argument(
        "--registry", help="key registry: verify every bundle's signature"
    )
    merge.add_argument(
        "--require-signatures", action="store_true", help="reject unsigned bundles"
    )
    merge.add_argument(
        "--config",
        help="the consortium's configuration: bundles of other analysis settings "
        "are rejected",
    )
    merge.set_defaults(func=_cmd_merge)

    site_km = commands.add_parser(
        "site-km",
        help="second round: answer the coordinator's Kaplan-Meier request",
    )
    site_km.add_argument("--config", required=True, help="YAML configuration file")
    site_km.add_argument("--site", required=True, help="site id (a key of sites:)")
    site_km.add_argument("--request", required=True, help="km_request.tsv of the merge")
    site_km.add_argument(
        "--out", required=True, help="bundle folder to write (*.km.naipo)"
    )
    site_km.set_defaults(func=_cmd_site_km)

    merge_km = commands.add_parser(
        "merge-km", help="pool the sites' Kaplan-Meier answers into curves and tests"
    )
    merge_km.add_argument("bundles", nargs="+", help="the sites' *.km.naipo folders")
    merge_km.add_argument(
        "--merge-dir", required=True, help="output folder of the merge"
    )
    merge_km.add_argument(
        "--request", help="request file (default MERGE_DIR/km_request.tsv)"
    )
    merge_km.set_defaults(func=_cmd_merge_km)

    demo = commands.add_parser(
        "demo-inputs", help="write one pseudo-site's inputs from a demo data set"
    )
    demo.add_argument(
        "--dataset", default="tcga-acc", choices=["tcga-acc", "1kg-chr22", "transbig"]
    )
    demo.add_argument(
        "--resources", help="folder of the data set (default under resources/)"
    )
    demo.add_argument("--site", type=int, required=True, help="site number, from 1")
    demo.add_argument("--n-sites", type=int, default=3)
    demo.add_argument("--out", required=True, help="output folder")
    demo.set_defaults(func=_cmd_demo_inputs)

    universe = commands.add_parser(
        "universe",
        help="write the biomarker universe of secure aggregation from id lists",
    )
    universe.add_argument(
        "lists", nargs="*", help="KIND=FILE: ids of one kind, one per line"
    )
    universe.add_argument(
        "--demo", choices=["tcga-acc", "transbig"], help="the universe of a demo"
    )
    universe.add_argument("--resources", help="folder of the demo data set")
    universe.add_argument("--out", required=True, help="TSV to write")
    universe.set_defaults(func=_cmd_universe)

    inspect = commands.add_parser(
        "inspect", help="list in plain language what a bundle would release"
    )
    inspect.add_argument("bundle")
    inspect.add_argument("--out", help="write the listing to this file for sign-off")
    inspect.set_defaults(func=_cmd_inspect)

    keygen = commands.add_parser(
        "keygen", help="make a site's signing and secure-aggregation keys"
    )
    keygen.add_argument("--site", required=True, help="site id")
    keygen.add_argument("--out", required=True, help="folder for the keys")
    keygen.set_defaults(func=_cmd_keygen)

    registry = commands.add_parser(
        "registry", help="combine the sites' public.yaml files into the key registry"
    )
    registry.add_argument("public", nargs="+", help="public.yaml of each site")
    registry.add_argument("--out", required=True, help="registry file to write")
    registry.set_defaults(func=_cmd_registry)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("config")
    check.set_defaults(func=_cmd_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        args.func(args)
    except NaipoError as exc:
        print(f"naipo-bio {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
