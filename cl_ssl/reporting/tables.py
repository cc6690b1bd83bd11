"""Tidy metric rows -> the R matrix and the one-row-per-strategy summary."""

from __future__ import annotations

import pandas as pd

TIDY_COLUMNS = ["strategy", "seed", "metric", "train_exp", "eval_exp", "value"]


def result_matrix(tidy: pd.DataFrame, metric: str = "ssl_loss") -> pd.DataFrame:
    """R[i][j]: ``metric`` on experience j's test set after training experience i.

    Rows are training experiences 0..T-1 (the untrained model's row, ``train_exp == -1``,
    is left out); columns are evaluation experiences.
    """
    rows = tidy[(tidy["metric"] == metric) & (tidy["train_exp"] >= 0)]
    matrix = rows.pivot_table(index="train_exp", columns="eval_exp", values="value")
    matrix.index.name, matrix.columns.name = "after exp", "eval exp"
    return matrix


def loss_increase(matrix: pd.DataFrame) -> float:
    """Mean over j < T-1 of R[T-1][j] - R[j][j]: the SSL loss's rise on earlier experiences.

    Positive means forgetting; NaN with a single experience.
    """
    last = matrix.shape[0] - 1
    if last < 1:
        return float("nan")
    return float(sum(matrix.iloc[last, j] - matrix.iloc[j, j] for j in range(last)) / last)
