"""Tidy metric rows (the columns every run writes) and the R matrix as a table."""

from __future__ import annotations

import pandas as pd

from cl_ssl.evaluation.continual import tidy_matrix

TIDY_COLUMNS = ["strategy", "seed", "metric", "train_exp", "eval_exp", "value"]


def result_matrix(tidy: pd.DataFrame, metric: str = "ssl_loss") -> pd.DataFrame:
    """R[i][j]: ``metric`` on experience j's test set after training experience i.

    Rows are training experiences 0..T-1 (the untrained model's row, ``train_exp == -1``,
    is left out); columns are evaluation experiences.
    """
    values, _baseline = tidy_matrix(tidy, metric)
    matrix = pd.DataFrame(values)
    matrix.index.name, matrix.columns.name = "after exp", "eval exp"
    return matrix
