"""The share of the naive -> joint gap a strategy closes, per seed, with its interval.

Naive finetuning is the lower reference of a continual stream and joint training (every
experience so far, at growing cost) the upper one. With F the final all-classes accuracy of
one training seed s (the ranking key of the summary),

    share_s(strategy) = (F_s(strategy) - F_s(naive)) / (F_s(joint) - F_s(naive)),

0 for naive, 1 for joint, negative for a strategy below naive. The share is taken per seed
(every strategy of a seed sees the same data order and views, so the pairing removes the
seed's shared noise) and summarised like any other cell: mean ± std and a 95% Student-t
interval over the seeds. It is only defined where the gap is: a seed whose joint is not
above naive gives no share, so such a seed is left out of every strategy's series.

Example:
    >>> shares = gap_shares(figures_by_seed(tidy), metric="all_linear")
    >>> shares["lwf-ssl"]  # per-seed values, indexed by seed
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LOWER = "naive"
UPPER = "joint"
TITLE = "naive→joint gap closed"


def by_seed(found: pd.DataFrame, metric: str, figure: str = "final_union") -> pd.DataFrame:
    """One figure of ``metric`` as a (seed x strategy) table from ``figures_by_seed`` rows.

    ``final_union`` falls back to ``final`` for runs without union rows (the mean over the
    splits).
    """
    rows = found[found["metric"] == metric]
    values = rows[figure]
    if figure == "final_union":
        values = values.fillna(rows["final"])
    frame = pd.DataFrame({"strategy": rows["strategy"], "seed": rows["seed"], "value": values})
    return frame.pivot_table(index="seed", columns="strategy", values="value", aggfunc="first")


def gap_shares(found: pd.DataFrame, metric: str) -> dict[str, pd.Series]:
    """Per strategy, the per-seed share of the gap it closes (seeds with a positive gap).

    Empty when the runs lack naive or joint. Seeds where a strategy did not run are absent
    from its series, never filled.
    """
    table = by_seed(found, metric)
    if LOWER not in table or UPPER not in table:
        return {}
    gap = table[UPPER] - table[LOWER]
    usable = gap > 0
    shares = {}
    for strategy in table.columns:
        share = (table[strategy] - table[LOWER]) / gap.where(usable, np.nan)
        shares[strategy] = share.dropna()
    return shares
