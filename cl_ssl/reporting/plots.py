"""Matplotlib figures of a bench or report: learning curves, forgetting bars, R heatmaps.

All functions write PNG files (Agg backend, no display needed) and return their paths.

Example:
    >>> paths = write_plots(runs.tidy, Path("runs/demo/plots"))
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cl_ssl.atomic import write_figure  # noqa: E402
from cl_ssl.evaluation.continual import seen_average, tidy_matrix  # noqa: E402
from cl_ssl.evaluation.metric_registry import registered, title_of  # noqa: E402
from cl_ssl.reporting.summary import figures_by_seed  # noqa: E402

# The metrics plotted, in order (the others stay in the CSVs): one figure grid stays readable.
TITLES = {
    "all_linear": "all-classes linear probe top-1",
    "all_knn20": "all-classes kNN-20 top-1",
    "all_nmi": "all-classes k-means NMI",
    "exp_linear": "per-experience linear probe top-1",
    "ssl_loss": "SSL loss",
}


def _metrics(tidy: pd.DataFrame) -> list[str]:
    """The curated metrics, then those registered with ``summary=True`` (a new metric's)."""
    present = set(tidy["metric"])
    declared = [m for spec in registered() if spec.summary for m in spec.tidy_names()]
    return [m for m in dict.fromkeys([*TITLES, *declared]) if m in present] or sorted(present)


def _title(metric: str) -> str:
    return TITLES.get(metric) or title_of(metric)


def learning_curves(tidy: pd.DataFrame, path: Path) -> Path:
    """Per metric: average over the experiences seen so far vs experiences trained."""
    metrics = _metrics(tidy)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for strategy, rows in tidy.groupby("strategy", sort=False):
            curves = [
                seen_average(tidy_matrix(seed_rows, metric)[0])
                for _, seed_rows in rows.groupby("seed")
            ]
            curves = np.array([c for c in curves if len(c)])
            if not curves.size:
                continue
            x = np.arange(1, curves.shape[1] + 1)
            mean = curves.mean(axis=0)
            ax.plot(x, mean, marker="o", label=strategy)
            if len(curves) > 1:
                std = curves.std(axis=0, ddof=1)
                ax.fill_between(x, mean - std, mean + std, alpha=0.2)
        ax.set_title(_title(metric))
        ax.set_xlabel("experiences trained")
        ax.set_xticks(range(1, int(tidy["eval_exp"].max()) + 2))
    axes[0][0].set_ylabel("average over seen experiences")
    axes[0][-1].legend(fontsize=8)
    return _save(fig, path)


def forgetting_bars(tidy: pd.DataFrame, path: Path) -> Path:
    """Per metric: average forgetting per strategy (mean and std over seeds)."""
    figures = figures_by_seed(tidy)
    metrics = _metrics(tidy)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        rows = figures[figures["metric"] == metric]
        grouped = rows.groupby("strategy", sort=False)["forgetting"]
        means, stds = grouped.mean(), grouped.std(ddof=1).fillna(0)
        ax.bar(means.index, means.values, yerr=stds.values, color="tab:red", alpha=0.7)
        ax.set_title(f"{_title(metric)}: forgetting")
        ax.tick_params(axis="x", rotation=45)
        ax.axhline(0, color="black", linewidth=0.8)
    return _save(fig, path)


def stability_plasticity(tidy: pd.DataFrame, path: Path) -> Path:
    """Forgetting (stability) against plasticity (mean R[j][j]) per strategy and metric.

    The corner to aim for is bottom right: learns each experience well, forgets little. A
    strategy at the bottom left "forgets nothing" because it stopped learning.
    """
    figures = figures_by_seed(tidy)
    metrics = [m for m in _metrics(tidy) if m != "ssl_loss"] or _metrics(tidy)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        rows = figures[figures["metric"] == metric]
        for strategy, mine in rows.groupby("strategy", sort=False):
            x, y = mine["plasticity"], mine["forgetting"]
            ax.errorbar(
                x.mean(),
                y.mean(),
                xerr=x.std(ddof=1) if len(x) > 1 else None,
                yerr=y.std(ddof=1) if len(y) > 1 else None,
                marker="o",
                capsize=3,
                label=strategy,
            )
        ax.set_title(_title(metric), fontsize=9)
        ax.set_xlabel("plasticity (mean R[j][j])")
        ax.set_ylabel("forgetting")
    axes[0][-1].legend(fontsize=8)
    return _save(fig, path)


def heatmaps(tidy: pd.DataFrame, path: Path) -> Path:
    """R[i][j] heatmaps: one row of panels per strategy, one column per metric (seed mean)."""
    metrics = _metrics(tidy)
    strategies = list(dict.fromkeys(tidy["strategy"]))
    fig, axes = plt.subplots(
        len(strategies),
        len(metrics),
        figsize=(3.2 * len(metrics), 2.9 * len(strategies)),
        squeeze=False,
    )
    for r, strategy in enumerate(strategies):
        rows = tidy[tidy["strategy"] == strategy]
        for c, metric in enumerate(metrics):
            ax = axes[r][c]
            matrices = [tidy_matrix(s, metric)[0] for _, s in rows.groupby("seed")]
            matrices = [m for m in matrices if m.size]
            if not matrices:
                ax.axis("off")
                continue
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # unmeasured cells stay NaN
                R = np.nanmean(np.stack(matrices), axis=0)
            image = ax.imshow(R, cmap="viridis_r" if metric == "ssl_loss" else "viridis")
            for (i, j), value in np.ndenumerate(R):
                if np.isfinite(value):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color="w")
            ax.set_title(f"{strategy}: {_title(metric)}", fontsize=8)
            ax.set_xlabel("eval exp", fontsize=7)
            ax.set_ylabel("after exp", fontsize=7)
            fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def write_plots(tidy: pd.DataFrame, directory: Path) -> list[Path]:
    """All four figures into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        learning_curves(tidy, directory / "curves.png"),
        forgetting_bars(tidy, directory / "forgetting.png"),
        stability_plasticity(tidy, directory / "stability_plasticity.png"),
        heatmaps(tidy, directory / "heatmaps.png"),
    ]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    write_figure(path, fig, dpi=110)
    plt.close(fig)
    return path
