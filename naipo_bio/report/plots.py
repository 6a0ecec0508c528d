"""Figures of the merge: QQ plots and forest plots (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from naipo_bio.io.atomic import atomic_file  # noqa: E402
from naipo_bio.stats.meta import genomic_control_lambda  # noqa: E402

DPI = 110


def _save(figure, path: Path) -> Path:
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def qq_plot(p: np.ndarray, title: str, path: str | Path) -> Path:
    """Observed against expected -log10 p, with a pointwise 95% band and lambda.

    Above 100,000 tests, the 10,000 smallest p-values and 5,000 log-spaced
    ranks of the rest are drawn, which looks the same at a fraction of the cost.
    """
    p = np.sort(np.asarray(p, dtype=np.float64)[np.isfinite(p)])
    p = np.clip(p, 1e-300, 1.0)
    n = p.size
    lam = genomic_control_lambda(p)
    figure, axis = plt.subplots(figsize=(4.8, 4.8))
    if n:
        ranks = np.arange(1, n + 1)
        if n > 100_000:
            spread = np.unique(np.geomspace(10_001, n, 5000).astype(np.int64))
            ranks = np.concatenate([np.arange(1, 10_001), spread])
            p = p[ranks - 1]
        expected = -np.log10(ranks / (n + 1))
        lower = -np.log10(stats.beta.ppf(0.975, ranks, n - ranks + 1))
        upper = -np.log10(stats.beta.ppf(0.025, ranks, n - ranks + 1))
        axis.fill_between(expected, lower, upper, color="0.85", label="95% band")
        axis.scatter(expected, -np.log10(p), s=6, color="C0")
        top = max(expected.max(), 1.0)
        axis.plot([0, top], [0, top], color="0.3", linewidth=0.8)
    axis.set_xlabel("expected -log10(p)")
    axis.set_ylabel("observed -log10(p)")
    axis.set_title(f"{title}\n{n} tests, lambda_GC = {lam:.3f}", fontsize=10)
    return _save(figure, Path(path))


def forest_plot(
    sites: pd.DataFrame, pooled: pd.Series, title: str, path: str | Path
) -> Path:
    """Per-site hazard ratios with 95% CIs, and the pooled estimates below them.

    ``sites`` has columns site, log_hr, se, fit_status; ``pooled`` has the
    fixed-effect, random-effects and one-step estimates of the merge table.
    """
    rows = []
    for site in sites.itertuples(index=False):
        if site.fit_status == "ok" and np.isfinite(site.se):
            rows.append((str(site.site), site.log_hr, site.se, "C0"))
        else:
            rows.append((f"{site.site} ({site.fit_status})", np.nan, np.nan, "C0"))
    for label, est, se in (
        ("fixed effect", "log_hr_fe", "se_fe"),
        ("random effects (DL)", "log_hr_re", "se_re"),
        ("score one-step", "log_hr_onestep", "se_onestep"),
    ):
        rows.append((label, pooled.get(est, np.nan), pooled.get(se, np.nan), "C3"))
    figure, axis = plt.subplots(figsize=(6.0, 0.45 * len(rows) + 1.2))
    for y, (_, est, se, colour) in enumerate(reversed(rows)):
        if np.isfinite(est) and np.isfinite(se):
            low, high = np.exp(est - 1.96 * se), np.exp(est + 1.96 * se)
            axis.plot([low, high], [y, y], color=colour, linewidth=1.5)
            marker = "D" if colour == "C3" else "s"
            axis.plot(np.exp(est), y, marker, color=colour)
    axis.set_yticks(range(len(rows)))
    axis.set_yticklabels([r[0] for r in reversed(rows)])
    axis.set_xscale("log")
    axis.axvline(1.0, color="0.4", linewidth=0.8, linestyle="--")
    axis.set_xlabel("hazard ratio (95% CI)")
    axis.set_title(title, fontsize=10)
    return _save(figure, Path(path))


def manhattan_plot(
    contig: np.ndarray,
    pos: np.ndarray,
    p: np.ndarray,
    title: str,
    path: str | Path,
    lambda_gc: float | None = None,
    n_tests: int | None = None,
) -> Path:
    """-log10 p along the genome, contigs in order, with lambda_GC in the title.

    ``p`` may be a sample of the tests (the merge keeps every p < 1e-3 and a
    uniform sample of the rest); ``lambda_gc`` and ``n_tests`` then describe
    all tests. Points with p > 0.01 are thinned to one in ten (seeded) when
    there are more than 200,000 of them; the thinning cannot hide a hit.
    """
    from naipo_bio.merge.variants import contig_sort_key

    p = np.clip(np.asarray(p, dtype=np.float64), 1e-300, 1.0)
    order = sorted(set(contig.tolist()), key=contig_sort_key)
    keep = np.ones(p.shape, dtype=bool)
    dull = p > 0.01
    if dull.sum() > 200_000:
        rng = np.random.default_rng(0)
        keep = ~dull | (rng.random(p.shape) < 0.1)
    figure, axis = plt.subplots(figsize=(10, 3.6))
    offset = 0
    ticks, labels = [], []
    for i, name in enumerate(order):
        on = (contig == name) & keep
        if not on.any():
            continue
        x = pos[on] + offset
        axis.scatter(
            x,
            -np.log10(p[on]),
            s=3,
            color="C0" if i % 2 == 0 else "C1",
            rasterized=True,
        )
        ticks.append(offset + pos[on].max() / 2)
        labels.append(name)
        offset += pos[contig == name].max() + 1
    axis.axhline(-np.log10(5e-8), color="C3", linewidth=0.8, linestyle="--")
    axis.set_xticks(ticks)
    axis.set_xticklabels(labels, fontsize=7)
    axis.set_xlabel("contig")
    axis.set_ylabel("-log10(p)")
    lam = genomic_control_lambda(p) if lambda_gc is None else lambda_gc
    count = p.size if n_tests is None else n_tests
    axis.set_title(f"{title}\n{count} tests, lambda_GC = {lam:.3f}", fontsize=10)
    return _save(figure, Path(path))


def volcano_plot(table: pd.DataFrame, title: str, path: str | Path, fdr: float) -> Path:
    """Log hazard ratio (fixed-effect, else one-step) against -log10 p."""
    effect = table["log_hr_fe"].where(
        table["log_hr_fe"].notna(), table["log_hr_onestep"]
    )
    keep = effect.notna() & table["p"].notna() & np.isfinite(effect)
    effect = effect[keep]
    p = np.clip(table.loc[keep, "p"].to_numpy(), 1e-300, 1.0)
    hit = (table.loc[keep, "q"] < fdr).to_numpy()
    figure, axis = plt.subplots(figsize=(5.6, 4.6))
    axis.scatter(effect[~hit], -np.log10(p[~hit]), s=5, color="0.6", rasterized=True)
    axis.scatter(effect[hit], -np.log10(p[hit]), s=7, color="C3", label=f"q < {fdr}")
    labels = table.loc[keep].assign(plotted_p=p).nsmallest(8, "plotted_p")
    for row in labels.itertuples():
        name = row.gene if isinstance(row.gene, str) and row.gene else row.biomarker_id
        axis.annotate(name, (effect[row.Index], -np.log10(row.plotted_p)), fontsize=7)
    axis.axvline(0.0, color="0.4", linewidth=0.8)
    axis.set_xlabel("log hazard ratio (fixed-effect meta-analysis)")
    axis.set_ylabel("-log10(p), pooled score test")
    axis.set_title(title, fontsize=10)
    if hit.any():
        axis.legend(loc="upper left", fontsize=8)
    return _save(figure, Path(path))


def km_plot(curve: pd.DataFrame, title: str, path: str | Path) -> Path:
    """Pooled Kaplan-Meier curves with 95% bands and a number-at-risk table."""
    groups = list(dict.fromkeys(curve["group"]))
    figure, (axis, table_axis) = plt.subplots(
        2, 1, figsize=(6.4, 5.2), gridspec_kw={"height_ratios": [4, 1]}, sharex=True
    )
    end = float(curve["time"].max())
    ticks = np.linspace(0.0, end, 6)
    for i, group in enumerate(groups):
        rows = curve.loc[curve["group"] == group].sort_values("time")
        times = np.concatenate([[0.0], rows["time"].to_numpy()])
        survival = np.concatenate([[1.0], rows["survival"].to_numpy()])
        colour = f"C{i}"
        axis.step(times, survival, where="post", color=colour, label=str(group))
        lower = np.concatenate([[1.0], rows["lower"].fillna(0).to_numpy()])
        upper = np.concatenate([[1.0], rows["upper"].fillna(1).to_numpy()])
        axis.fill_between(times, lower, upper, step="post", color=colour, alpha=0.15)
        for t in ticks:
            later = rows.loc[rows["time"] >= t, "at_risk"]
            n = int(later.iloc[0]) if len(later) else 0
            table_axis.text(
                t, len(groups) - 1 - i, str(n), ha="center", va="center",
                color=colour, fontsize=8,
            )  # fmt: skip
    axis.set_ylim(0, 1.02)
    axis.set_ylabel("survival probability")
    axis.legend(loc="lower left", fontsize=8)
    axis.set_title(title, fontsize=10)
    table_axis.set_yticks(range(len(groups)))
    table_axis.set_yticklabels(list(reversed(groups)), fontsize=8)
    table_axis.set_ylim(-0.6, len(groups) - 0.4)
    table_axis.set_xticks(ticks)
    table_axis.set_xlabel("days (number at risk below)")
    for side in ("top", "right"):
        table_axis.spines[side].set_visible(False)
    return _save(figure, Path(path))
