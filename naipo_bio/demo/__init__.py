"""Demo data sets: real public data split into pseudo-hospitals."""

from __future__ import annotations

from importlib import import_module

#: Demo name -> (module, default resources folder).
DATASETS = {
    "tcga-acc": ("naipo_bio.demo.tcga_acc", "resources/tcga-acc"),
    "1kg-chr22": ("naipo_bio.demo.germline_1kg", "resources/1kg-vcf-slices"),
    "transbig": ("naipo_bio.demo.transbig", "resources/transbig-gse7390"),
}


def demo_module(name: str):
    return import_module(DATASETS[name][0])


def default_resources(name: str) -> str:
    return DATASETS[name][1]
