"""A self-contained HTML report of a merge (tables and embedded figures)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import pandas as pd

from naipo_bio.io.atomic import write_text

TABLE_COLUMNS = (
    "biomarker_id", "gene", "n_sites_tested", "n", "n_events", "n_carriers", "z", "p",
    "q", "log_hr_onestep", "log_hr_fe", "se_fe", "log_hr_re", "i2",
)  # fmt: skip

VARIANT_COLUMNS = (
    "contig", "pos", "ref", "alt", "n_sites_tested", "n", "af", "mac", "z", "p", "q",
    "log_hr_onestep", "low_mac", "palindromic", "het_q",
)  # fmt: skip

GENE_COLUMNS = (
    "gene", "n_sites", "n_variants_tested", "pooled_mac", "burden_p", "skat_p",
    "skato_p", "skato_q", "skato_rho",
)  # fmt: skip

TEXT_COLUMNS = ("biomarker_id", "gene", "site", "contig", "ref", "alt")

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
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return ""
    if isinstance(value, float):
        if column in ("p", "q", "p_fe", "p_re"):
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


def write_report(
    path: str | Path,
    summary: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    figures: dict[str, dict[str, list[Path]]],
    top: int = 20,
) -> Path:
    """Write the merge report to ``path``."""
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
    for kind, table in tables.items():
        info = summary["kinds"][kind]
        parts.append(f"<h2>{html.escape(kind)}</h2>")
        parts.append(
            f"<p>{info['tested']} biomarkers tested at one site or more; "
            f"{info['significant']} with BH q &lt; {summary['fdr']}; genomic-control "
            f"lambda {info['lambda_gc']:.3f}. Withheld by a site's disclosure "
            f"policy: {info['suppressed_site_rows']} site rows.</p>"
        )
        if kind == "variant":
            parts.append(_table(table.head(top), VARIANT_COLUMNS))
        elif kind == "gene":
            parts.append(_table(table.head(top), GENE_COLUMNS))
        else:
            tested = table.loc[table.n_sites_tested > 0]
            parts.append(_table(tested.head(top), TABLE_COLUMNS))
        for figure in figures.get(kind, {}).get("qq", []):
            parts.append(_image(figure))
        forests = figures.get(kind, {}).get("forest", [])
        if forests:
            parts.append("<h3>Top hits by site</h3>")
            parts.extend(_image(f) for f in forests)
    parts.append("<h2>Methods</h2><p>" + html.escape(summary["methods"]) + "</p>")
    parts.append("</body></html>")
    return write_text(path, "\n".join(parts))
