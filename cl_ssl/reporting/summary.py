"""The comparison table: stability and plasticity side by side, mean ± std and 95% intervals.

One row per strategy, ranked by the final all-classes accuracy (the figure continual-SSL
papers report), with the figures that say *why* a strategy ranks where it does next to it:

- ``final acc``: the all-classes linear probe (or kNN when the probe is off) on the union
  of every experience's evaluation split after the last experience: the ranking key;
- ``avg incremental acc``: the seen average over the whole stream (Rebuffi et al., 2017);
- ``plasticity``: mean of R[j][j] (each experience right after learning it);
- ``forgetting`` (Chaudhry et al., 2018), ``BWT`` and ``FWT`` (Lopez-Paz & Ranzato, 2017);
- the per-experience probe, k-means NMI, and the SSL-loss figures after them, because a
  low SSL-loss forgetting alone rewards a model that stopped learning;
- embedding health of the final features (effective rank, std ratio: a collapsing
  representation shows here before it shows in accuracy);
- every registered metric declared with ``summary=True`` (a new one by default,
  :mod:`cl_ssl.evaluation.metric_registry`): its final value and its forgetting;
- cost: images per step (replay's compute shows here), train seconds, ms per step and the
  share of training time spent waiting for data.

With several seeds a cell reads ``mean ± std`` and the ranking key gets a 95% Student-t
interval; :func:`summary_stats` gives mean, std and the interval of every cell as numbers.

Example:
    >>> print(headline_table(bench.tidy, bench.timings).to_markdown(index=False))
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy import stats

from cl_ssl.evaluation.continual import tidy_figures
from cl_ssl.evaluation.metric_registry import registered, title_of
from cl_ssl.reporting import gap

# Accuracy metrics in order of preference for the stability/plasticity columns.
PRIMARY = ("all_linear", "all_knn20", "exp_linear", "exp_knn20")
PROTOCOL = {"all": "all-classes", "exp": "per-exp"}


def _label(metric: str) -> str:
    protocol, _, kind = metric.partition("_")
    names = {"linear": "linear", "knn20": "kNN-20", "knn200": "kNN-200", "nmi": "NMI"}
    kind = names.get(kind, kind)
    return f"{PROTOCOL.get(protocol, protocol)} {kind}"


def columns(measured: set[str]) -> list[tuple[str, str, str]]:
    """(title, metric, figure) of every headline column the runs measured."""
    primary = next((m for m in PRIMARY if m in measured), None)
    cols: list[tuple[str, str, str]] = []
    if primary is not None:
        union = "final_union" if primary.startswith("all_") else "final"
        cols.append((f"final acc ({_label(primary)})", primary, union))
    if "all_knn20" in measured and primary != "all_knn20":
        cols.append(("final acc (all-classes kNN-20)", "all_knn20", "final_union"))
    if primary is not None:
        for title, figure in (
            ("avg incremental acc", "avg_incremental"),
            ("plasticity", "plasticity"),
            ("forgetting", "forgetting"),
            ("BWT", "bwt"),
            ("FWT", "fwt"),
        ):
            cols.append((title, primary, figure))
    if "all_nmi" in measured:
        cols.append(("final NMI (all-classes)", "all_nmi", "final_union"))
    if "exp_linear" in measured and primary != "exp_linear":
        cols.append(("final acc (per-exp linear)", "exp_linear", "final"))
    if "all_effrank" in measured:  # embedding health of the final features
        cols.append(("final eff. rank", "all_effrank", "final_union"))
        cols.append(("final std ratio", "all_stdratio", "final_union"))
    if "ssl_loss" in measured:
        cols.append(("final SSL loss", "ssl_loss", "final"))
        cols.append(("SSL-loss forgetting %", "ssl_loss", "forgetting_pct"))
    for spec in registered():  # metrics declared with summary=True: final and forgetting
        for metric in spec.tidy_names() if spec.summary else ():
            if metric in measured:
                final = "final_union" if metric.startswith("all_") else "final"
                cols.append((f"final {title_of(metric)}", metric, final))
                cols.append((f"forgetting ({title_of(metric)})", metric, "forgetting"))
    return cols


TIMING = (
    ("images/step", "images_per_step", 0),
    ("train s", "train_s", 1),
    ("ms/step", "ms_per_step", 1),
    ("data wait %", "data_wait_pct", 1),
)


def figures_by_seed(tidy: pd.DataFrame) -> pd.DataFrame:
    """Figures per (strategy, seed, metric)."""
    parts = []
    for (strategy, seed), rows in tidy.groupby(["strategy", "seed"], sort=False):
        found = tidy_figures(rows)
        found.insert(0, "seed", seed)
        found.insert(0, "strategy", strategy)
        parts.append(found)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def cell_values(tidy: pd.DataFrame, timings: pd.DataFrame | None) -> dict:
    """``{strategy: {title: per-seed values}}`` of every headline and timing column."""
    found = figures_by_seed(tidy)
    measured = set(found["metric"]) if not found.empty else set()
    out: dict[str, dict[str, pd.Series]] = {}
    primary = next((m for m in PRIMARY if m in measured), None)
    shares = gap.gap_shares(found, primary) if primary else {}
    for strategy in dict.fromkeys(tidy["strategy"]):
        mine = found[found["strategy"] == strategy]
        cells = {}
        for title, metric, figure in columns(measured):
            rows = mine[mine["metric"] == metric]
            values = rows[figure]
            if figure == "final_union":  # runs without union rows: the mean over the splits
                values = values.fillna(rows["final"])
            cells[title] = values.dropna()
        if shares:  # naive and joint both ran: the share of their gap, paired per seed
            cells[gap.TITLE] = shares.get(strategy, pd.Series(dtype=float))
        if timings is not None and not timings.empty:
            timing = timings[timings["strategy"] == strategy]
            for title, key, _digits in TIMING:
                if key in timing:
                    cells[title] = timing[key].dropna()
        out[strategy] = cells
    return out


def interval(values: pd.Series, level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean (NaN with fewer than two values)."""
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    mean, sem = float(values.mean()), float(values.std(ddof=1)) / np.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sem
    return mean - half, mean + half


def _text(values: pd.Series, digits: int) -> str:
    if values.empty:
        return "—"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


METHOD_LABEL = re.compile(r"^(?P<strategy>.+) \[(?P<method>[^\[\]]+)\]$")


def method_label(strategy: str, method: str) -> str:
    """A run's row name in a grid of several methods: ``naive [byol]``.

    One name per (strategy, method), so means over seeds never mix methods, in every table
    and plot that groups by strategy; :func:`method_column` splits it back for display.
    """
    return f"{strategy} [{method}]"


def method_column(table: pd.DataFrame) -> pd.DataFrame:
    """A table whose rows are all :func:`method_label` names, with ``method`` as its own column.

    Rows of one method stay together (in order of first appearance), each method's ranked
    as before; any other table is returned as it is.
    """
    if table.empty or "strategy" not in table:
        return table
    found = [METHOD_LABEL.match(str(name)) for name in table["strategy"]]
    if not all(found):
        return table
    table = table.assign(
        method=[m["method"] for m in found], strategy=[m["strategy"] for m in found]
    )
    order = {method: i for i, method in enumerate(dict.fromkeys(table["method"]))}
    table = table.sort_values("method", key=lambda c: c.map(order), kind="stable")
    columns = ["method", *(c for c in table.columns if c != "method")]
    return table[columns].reset_index(drop=True)


def headline_table(
    tidy: pd.DataFrame, timings: pd.DataFrame | None = None, numeric: bool = False
) -> pd.DataFrame:
    """One row per strategy, best final accuracy first; ``numeric`` gives plain means."""
    cells = cell_values(tidy, timings)
    digits = {title: d for title, _key, d in TIMING}
    rows = []
    for strategy, by_title in cells.items():
        seeds = tidy.loc[tidy["strategy"] == strategy, "seed"].nunique()
        row: dict[str, object] = {"strategy": strategy, "seeds": seeds}
        for position, (title, values) in enumerate(by_title.items()):
            if numeric:
                row[title] = values.mean() if len(values) else float("nan")
                continue
            places = digits.get(title, 1 if "%" in title else 3)
            row[title] = _text(values, places)
            if title == gap.TITLE and len(values) > 1:  # the share's interval is the point
                low, high = interval(values)
                row[title] = f"{values.mean():.2f} [{low:.2f}, {high:.2f}]"
            if position == 0 and title.startswith("final acc") and len(values) > 1:
                low, high = interval(values)
                row["95% CI"] = f"[{low:.3f}, {high:.3f}]"
        key = next(iter(by_title), "")
        row["_key"] = by_title[key].mean() if key.startswith("final acc") else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    # Best final accuracy first; without an accuracy (unlabeled data) the order is kept.
    table = table.sort_values("_key", ascending=False, kind="stable", na_position="last")
    return table.drop(columns="_key").reset_index(drop=True)


def summary_stats(tidy: pd.DataFrame, timings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Long table: strategy, column, n, mean, std, ci95_low, ci95_high of every cell."""
    rows = []
    for strategy, by_title in cell_values(tidy, timings).items():
        for title, values in by_title.items():
            low, high = interval(values)
            rows.append(
                {
                    "strategy": strategy,
                    "column": title,
                    "n": len(values),
                    "mean": values.mean() if len(values) else float("nan"),
                    "std": values.std(ddof=1) if len(values) > 1 else float("nan"),
                    "ci95_low": low,
                    "ci95_high": high,
                }
            )
    return pd.DataFrame(
        rows, columns=["strategy", "column", "n", "mean", "std", "ci95_low", "ci95_high"]
    )
