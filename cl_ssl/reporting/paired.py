"""Every strategy against naive, paired by training seed: the difference and its interval.

All strategies of one training seed see the same split, data order and views, so the
difference with that seed's naive run removes the noise the seed shares with it. For a
figure F of the headline table (final accuracy, final kNN-20, plasticity, forgetting, NMI)
and the seeds s where both ran,

    d_s = F_s(strategy) - F_s(naive),   reported as mean_s d_s with its 95% Student-t interval,

which separates from 0 long before the unpaired intervals of the two rows stop overlapping
(a small test split adds the same sampling error to both). Beside it, the share of the
naive -> joint gap as a ratio of means over the seeds where naive, joint and the strategy
all ran,

    gap closed = mean_s d_s / mean_s (F_s(joint) - F_s(naive)),

steadier than the mean of per-seed shares (:mod:`cl_ssl.reporting.gap`), which one seed
with a small gap can swing. In a grid of methods each strategy is paired with the naive run
of its own method (``lwf-ssl [byol]`` with ``naive [byol]``).

Example:
    >>> paired = paired_figures(figures_by_seed(runs.tidy))
    >>> print(paired_table(paired).to_markdown(index=False))
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cl_ssl.reporting import gap
from cl_ssl.reporting.summary import METHOD_LABEL, columns, interval, method_label

# Headline columns compared: (title as in the headline table, or its prefix).
FIGURES = (
    "final acc (",
    "final acc (all-classes kNN-20)",
    "plasticity",
    "forgetting",
    "final NMI (all-classes)",
)
GAP_TITLE = "gap closed (ratio of means)"
CAPTION = (
    "Paired against naive (the same seed's naive run): mean difference over the seeds "
    "with its 95% Student-t interval (`paired.csv`):\n\n"
)


def paired_difference(table: pd.DataFrame, strategy: str, lower: str) -> pd.Series:
    """d_s = F_s(strategy) - F_s(lower) of a (seed x strategy) table, seeds where both ran."""
    both = table[[strategy, lower]].dropna()
    return both[strategy] - both[lower]


def gap_closed(table: pd.DataFrame, strategy: str, lower: str, upper: str) -> tuple[int, float]:
    """The share of the lower -> upper gap ``strategy`` closes, as a ratio of means.

    Returns (seeds, mean_s d_s / mean_s (F_s(upper) - F_s(lower))) over the seeds where all
    three ran; the share is NaN where that mean gap is not above 0.
    """
    three = table[list(dict.fromkeys([strategy, lower, upper]))].dropna()
    spread = (three[upper] - three[lower]).mean()
    share = (three[strategy] - three[lower]).mean() / spread if spread > 0 else np.nan
    return len(three), share


def _reference(strategy: str, lower: str) -> str:
    """The run a strategy is paired with: ``naive``, or ``naive [method]`` in a grid."""
    found = METHOD_LABEL.match(strategy)
    return method_label(lower, found["method"]) if found else lower


def _compared(found: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(title, metric, figure) of the headline columns in FIGURES, in that order."""
    measured = set(found["metric"]) if not found.empty else set()
    cols = columns(measured)
    chosen = []
    for wanted in FIGURES:
        for col in cols:
            matches = col[0].startswith(wanted) if wanted.endswith("(") else col[0] == wanted
            if matches and col not in chosen:
                chosen.append(col)
                break
    return chosen


def paired_figures(found: pd.DataFrame) -> pd.DataFrame:
    """Long table: strategy, column, n, mean, ci95_low, ci95_high of every paired figure.

    ``column`` is the headline column's title followed by `` − naive``, plus the gap
    closed as a ratio of means (first column's figure; ``n`` its seeds). Strategies
    without a naive run of their method, and the naive runs themselves, have no rows.
    """
    rows = []
    compared = _compared(found)
    for position, (title, metric, figure) in enumerate(compared):
        table = gap.by_seed(found, metric, figure)
        for strategy in table.columns:
            lower = _reference(strategy, gap.LOWER)
            if strategy == lower or lower not in table:
                continue
            difference = paired_difference(table, strategy, lower)
            low, high = interval(difference)
            rows.append(
                {
                    "strategy": strategy,
                    "column": f"{title} − {gap.LOWER}",
                    "n": len(difference),
                    "mean": difference.mean() if len(difference) else np.nan,
                    "ci95_low": low,
                    "ci95_high": high,
                }
            )
            upper = _reference(strategy, gap.UPPER)
            if position == 0 and upper in table:
                seeds, share = gap_closed(table, strategy, lower, upper)
                rows.append(
                    {
                        "strategy": strategy,
                        "column": GAP_TITLE,
                        "n": seeds,
                        "mean": share,
                        "ci95_low": np.nan,
                        "ci95_high": np.nan,
                    }
                )
    return pd.DataFrame(rows, columns=["strategy", "column", "n", "mean", "ci95_low", "ci95_high"])


def paired_table(paired: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """One row per strategy: ``+0.023 [+0.013, +0.033]`` per figure, the gap share last.

    ``order`` gives the rows' order (the headline table's); empty without paired rows.
    """
    if paired.empty:
        return pd.DataFrame()
    strategies = list(dict.fromkeys(paired["strategy"]))
    if order is not None:
        strategies = [s for s in order if s in strategies]
    table = []
    for strategy in strategies:
        row: dict[str, object] = {"strategy": strategy}
        for cell in paired[paired["strategy"] == strategy].itertuples():
            if cell.column == GAP_TITLE:
                row[cell.column] = "—" if np.isnan(cell.mean) else f"{cell.mean:.2f}"
            elif np.isnan(cell.ci95_low):
                row[cell.column] = f"{cell.mean:+.3f}"
            else:
                row[cell.column] = f"{cell.mean:+.3f} [{cell.ci95_low:+.3f}, {cell.ci95_high:+.3f}]"
        if GAP_TITLE in row:  # last, as in the headline table
            row[GAP_TITLE] = row.pop(GAP_TITLE)
        table.append(row)
    return pd.DataFrame(table).fillna("—")
