"""Tables of one bench or of many runs and seeds: figures per strategy, mean ± std.

Reads what :mod:`cl_ssl.bench` writes (``<strategy>/metrics.csv`` tidy rows and
``results.json`` timings), so ``clssl report`` works on any finished or stopped run.

Example:
    >>> runs = load_runs([Path("runs/seed0"), Path("runs/seed1")])
    >>> print(headline_table(runs.tidy, runs.timings).to_markdown(index=False))
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cl_ssl.evaluation.continual import tidy_figures
from cl_ssl.reporting.tables import TIDY_COLUMNS

TIMING_COLUMNS = ["strategy", "seed", "train_s", "eval_s", "images_per_s", "ms_per_step"]

# Headline columns: (column title, metric, figure).
HEADLINE = [
    ("final kNN-20", "knn20", "final"),
    ("final linear", "linear", "final"),
    ("final NMI", "nmi", "final"),
    ("kNN-20 forgetting", "knn20", "forgetting"),
    ("kNN-20 BWT", "knn20", "bwt"),
    ("final SSL loss", "ssl_loss", "final"),
    ("SSL-loss forgetting %", "ssl_loss", "forgetting_pct"),
]


@dataclass
class Runs:
    """Tidy metric rows and one timing row per (strategy, seed) of one or more runs."""

    tidy: pd.DataFrame
    timings: pd.DataFrame


def load_runs(directories: Sequence[Path]) -> Runs:
    """Every ``metrics.csv`` (and its ``results.json``) under ``directories``."""
    tidy, timings = [], []
    for directory in map(Path, directories):
        if not directory.exists():
            raise FileNotFoundError(f"{directory} not found: pass bench directories under runs/")
        found = sorted(directory.rglob("metrics.csv"))
        if not found:
            raise ValueError(f"no metrics.csv under {directory}: is it a `clssl bench` output?")
        for csv in found:
            frame = pd.read_csv(csv)
            missing = set(TIDY_COLUMNS) - set(frame.columns)
            if missing:
                raise ValueError(f"{csv} lacks columns {sorted(missing)}; expected {TIDY_COLUMNS}")
            tidy.append(frame[TIDY_COLUMNS])
            results = csv.with_name("results.json")
            if results.is_file():
                payload = json.loads(results.read_text())
                timings.append(
                    {
                        "strategy": payload["strategy"],
                        "seed": payload["train"]["seed"],
                        "train_s": payload["train_seconds"],
                        "eval_s": payload["eval_seconds"],
                        "images_per_s": payload["images_per_second"],
                        "ms_per_step": payload.get("ms_per_step", np.nan),
                    }
                )
    return Runs(pd.concat(tidy, ignore_index=True), pd.DataFrame(timings, columns=TIMING_COLUMNS))


def figures_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Figures per (strategy, seed, metric): final, forgetting, bwt, fwt, forgetting_pct."""
    parts = []
    for (strategy, seed), rows in tidy.groupby(["strategy", "seed"], sort=False):
        figures = tidy_figures(rows)
        figures.insert(0, "seed", seed)
        figures.insert(0, "strategy", strategy)
        parts.append(figures)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _mean_std(values: pd.Series, digits: int) -> str:
    values = values.dropna()
    if values.empty:
        return "—"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def headline_table(
    tidy: pd.DataFrame, timings: pd.DataFrame | None = None, numeric: bool = False
) -> pd.DataFrame:
    """One row per strategy with the headline columns, mean ± std over seeds.

    Accuracy columns appear only when the runs measured them (labeled streams). With
    ``numeric`` the cells are the means as floats instead of ``"mean ± std"`` text.
    """
    cell = (lambda values, _digits: values.dropna().mean()) if numeric else _mean_std
    figures = figures_table(tidy)
    strategies = list(dict.fromkeys(tidy["strategy"]))
    measured = set(figures["metric"]) if not figures.empty else set()
    rows = []
    for strategy in strategies:
        mine = figures[figures["strategy"] == strategy]
        row = {"strategy": strategy, "seeds": mine["seed"].nunique()}
        for title, metric, figure in HEADLINE:
            if metric in measured:
                digits = 1 if figure == "forgetting_pct" else 4
                row[title] = cell(mine.loc[mine["metric"] == metric, figure], digits)
        if timings is not None and not timings.empty:
            timing = timings[timings["strategy"] == strategy]
            row["train s"] = cell(timing["train_s"], 1)
            row["eval s"] = cell(timing["eval_s"], 1)
            row["images/s"] = cell(timing["images_per_s"], 0)
            row["ms/step"] = cell(timing["ms_per_step"], 1)
        rows.append(row)
    return pd.DataFrame(rows)
