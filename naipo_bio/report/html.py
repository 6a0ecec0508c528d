"""A self-contained HTML report of a merge folder (tables and embedded figures).

The report is rebuilt from what the merge folder holds (``summary.json``, the
tables and the figures), so a later round (Kaplan-Meier) adds its section by
rebuilding it.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from naipo_bio.io.atomic import write_text

TABLE_COLUMNS = (
    "biomarker_id", "gene", "n_sites_tested", "n", "n_events", "n_carriers", "z", "p",
    "q", "log_hr_onestep", "log_hr_fe", "se_fe", "log_hr_re", "i2", "log_hr_fe_per_sd",
)  # fmt: skip

VARIANT_COLUMNS = (
    "contig", "pos", "ref", "alt", "n_sites_tested", "n", "af", "mac", "z", "p", "q",
    "log_hr_onestep", "low_mac", "palindromic", "het_q",
)  # fmt: skip

GENE_COLUMNS = (
    "gene", "status", "n_sites", "n_variants_tested", "pooled_mac", "burden_p",
    "skat_p", "skato_p", "skato_q", "skato_rho",
)  # fmt: skip

KM_COLUMNS = ("kind", "label", "cut", "n_sites", "chi2", "df", "p")

TEXT_COLUMNS = ("biomarker_id", "gene", "site", "contig", "ref", "alt", "kind", "label",
                "status")  # fmt: skip

STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #f0f0f0; }
td.text { text-align: left; }
.note { background: #fff8e0; border-left: 4px solid #e0b000; padding: 0.5em 1em; }
img { max-width: 100%; }
"""


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _format(value: Any, column: str) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        if column in ("p", "q", "p_fe", "p_re") or column.endswith(("_p", "_q")):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame, columns) -> str:
    columns = [c for c in columns if c in frame.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for column in columns:
            css = ' class="text"' if column in TEXT_COLUMNS else ""
            cells.append(f"<td{css}>{_format(row[column], column)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _read(path: Path, rows: int) -> pd.DataFrame | None:
    if not path.exists():
        return None
    return pd.read_csv(path, sep="\t", nrows=rows, dtype={"contig": str})


def _kind_table(tables: Path, kind: str, top: int) -> str:
    if kind == "variant":
        frame = _read(tables / "top_variants.tsv", top)
        return _table(frame, VARIANT_COLUMNS) if frame is not None else ""
    if kind == "gene":
        frame = _read(tables / "gene_tests.tsv", top)
        return _table(frame, GENE_COLUMNS) if frame is not None else ""
    frame = _read(tables / f"associations.{kind}.tsv", 50 * top)
    if frame is None:
        return ""
    return _table(frame.loc[frame.n_sites_tested > 0].head(top), TABLE_COLUMNS)


def build_report(merge_dir: str | Path, top: int = 20) -> Path:
    """Write ``report.html`` from the contents of a merge folder."""
    merge_dir = Path(merge_dir)
    summary = json.loads((merge_dir / "summary.json").read_text())
    tables = merge_dir / "tables"
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>naipo-bio: {html.escape(summary['analysis_id'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Pooled biomarker-survival associations: "
        f"{html.escape(summary['analysis_id'])}</h1>",
        f"<p>{html.escape(summary['test'])}</p>",
        "<h2>Sites</h2>",
        _table(
            pd.DataFrame(summary["sites"]), ("site", "patients", "events", "created")
        ),
    ]
    for note in summary.get("notes", []):
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    for kind, info in summary["kinds"].items():
        parts.append(f"<h2>{html.escape(kind)}</h2>")
        parts.append(
            f"<p>{info['tested']} tested at one site or more; {info['significant']} "
            f"with BH q &lt; {summary['fdr']}; genomic-control lambda "
            f"{info['lambda_gc']:.3f}. Withheld by a site's disclosure policy: "
            f"{info['suppressed_site_rows']} site rows."
            + (
                f" Effect scale: {html.escape(info['scale'])}."
                if info.get("scale")
                else ""
            )
            + "</p>"
        )
        parts.append(_kind_table(tables, kind, top))
        figures = summary.get("figures", {}).get(kind, {})
        for name in ("qq", "volcano", "manhattan"):
            for figure in figures.get(name, []):
                parts.append(_image(merge_dir / figure))
        if figures.get("forest"):
            parts.append("<h3>Top hits by site</h3>")
            parts.extend(_image(merge_dir / f) for f in figures["forest"])
    km_summary = merge_dir / "km" / "summary.json"
    km = json.loads(km_summary.read_text()) if km_summary.exists() else None
    if km:
        parts.append("<h2>Kaplan-Meier curves and stratified log-rank tests</h2>")
        parts.append(f"<p>{html.escape(km['method'])}</p>")
        logrank = _read(merge_dir / "km" / "tables" / "logrank.tsv", 1000)
        if logrank is not None and len(logrank):
            per_group = tuple(
                c
                for c in logrank.columns
                if c.startswith(("n_", "events_", "median_days_")) and c != "n_sites"
            )
            parts.append(_table(logrank, KM_COLUMNS + per_group))
        for result in km["results"]:
            if result.get("plot"):
                parts.append(_image(merge_dir / result["plot"]))
            else:
                parts.append(
                    f"<p>{html.escape(result['kind'])} {html.escape(result['label'])}: "
                    f"{html.escape(result['status'])}</p>"
                )
    parts.append("<h2>Methods</h2><p>" + html.escape(summary["methods"]) + "</p>")
    parts.append("</body></html>")
    return write_text(merge_dir / "report.html", "\n".join(parts))
