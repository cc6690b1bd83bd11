"""Continual-learning figures of a result matrix R[i][j] (after experience i, on experience j).

With T experiences, b[j] the untrained model's value on j, and f = +1 for metrics where higher
is better (accuracy, NMI) and -1 where lower is (the SSL loss):

- final average:        A = 1/T sum_j R[T-1][j]
- average forgetting:   F = 1/(T-1) sum_{j<T-1} f * (best_{l<T-1} R[l][j] - R[T-1][j])
                        (Chaudhry et al., ECCV 2018; best = max, or min for a loss)
- backward transfer:    BWT = 1/(T-1) sum_{j<T-1} (R[T-1][j] - R[j][j])
- forward transfer:     FWT = 1/(T-1) sum_{j>=1} (R[j-1][j] - b[j])
                        (Lopez-Paz & Ranzato, NeurIPS 2017)
- plasticity:           P = 1/T sum_j R[j][j]   (each experience right after learning it)
- avg incremental:      AIA = 1/T sum_i (1/(i+1) sum_{j<=i} R[i][j])
                        (Rebuffi et al., CVPR 2017: the seen average over the whole stream)
- relative forgetting:  100/(T-1) sum_{j<T-1} f * (R[j][j] - R[T-1][j]) / |R[j][j]|   in %
                        (for the SSL loss: how much the loss on old data rose, in %)

BWT and FWT keep the metric's own sign (a rising loss is a positive BWT); forgetting and
relative forgetting are positive when something was forgotten, whatever the metric.
Undefined entries (NaN, e.g. an experience without labels) are left out of the means.

Example:
    >>> R = np.array([[0.9, 0.1], [0.6, 0.8]])
    >>> average_forgetting(R)   # 0.9 - 0.6
    0.3
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from cl_ssl.evaluation import metric_registry


def higher_is_better(metric: str) -> bool:
    """The registered direction of a tidy metric (``ssl_loss``: False; accuracies: True).

    Read from :mod:`cl_ssl.evaluation.metric_registry`; names no metric registered count
    as higher-is-better.
    """
    return metric_registry.higher_is_better(metric)


def _mean(values) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN -> NaN is the answer
        return float(np.nanmean(np.asarray(values, dtype=float))) if len(values) else float("nan")


def final_average(R: np.ndarray) -> float:
    """Mean of the last row: every experience, after training on all of them."""
    return _mean(np.asarray(R)[-1])


def seen_average(R: np.ndarray) -> list[float]:
    """Row i's mean over the experiences seen so far (0..i): the usual learning curve."""
    R = np.asarray(R)
    return [_mean(R[i, : i + 1]) for i in range(R.shape[0])]


def average_forgetting(R: np.ndarray, higher_is_better: bool = True) -> float:
    """Chaudhry et al.'s average forgetting of the final model (NaN with one experience)."""
    R = np.asarray(R, dtype=float)
    last = R.shape[0] - 1
    if last < 1:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        best = np.nanmax(R[:last], axis=0) if higher_is_better else np.nanmin(R[:last], axis=0)
    sign = 1.0 if higher_is_better else -1.0
    return _mean([sign * (best[j] - R[last, j]) for j in range(last)])


def backward_transfer(R: np.ndarray) -> float:
    """Lopez-Paz & Ranzato's BWT (negative for a forgotten accuracy)."""
    R = np.asarray(R, dtype=float)
    last = R.shape[0] - 1
    return _mean([R[last, j] - R[j, j] for j in range(last)]) if last else float("nan")


def forward_transfer(R: np.ndarray, baseline: np.ndarray) -> float:
    """Lopez-Paz & Ranzato's FWT against the untrained model's values ``baseline``."""
    R, baseline = np.asarray(R, dtype=float), np.asarray(baseline, dtype=float)
    T = R.shape[0]
    return _mean([R[j - 1, j] - baseline[j] for j in range(1, T)]) if T > 1 else float("nan")


def relative_forgetting_pct(R: np.ndarray, higher_is_better: bool = True) -> float:
    """Mean relative loss of what was reached on each old experience, in percent."""
    R = np.asarray(R, dtype=float)
    last = R.shape[0] - 1
    sign = 1.0 if higher_is_better else -1.0
    terms = [
        100.0 * sign * (R[j, j] - R[last, j]) / abs(R[j, j]) if R[j, j] else float("nan")
        for j in range(last)
    ]
    return _mean(terms) if last else float("nan")


def plasticity(R: np.ndarray) -> float:
    """Mean of the diagonal: how well each experience was learnt right after training on it."""
    R = np.asarray(R, dtype=float)
    return _mean(np.diag(R)) if R.size else float("nan")


def average_incremental(R: np.ndarray) -> float:
    """Mean over training steps of the seen average (average incremental accuracy)."""
    return _mean(seen_average(R)) if np.asarray(R).size else float("nan")


FIGURES = ("final", "avg_incremental", "plasticity", "forgetting", "bwt", "fwt", "forgetting_pct")


CHANCE_AT_ZERO = ("ari", "nmi")
"""Clustering scores that are 0 at chance: a percentage of them is undefined there."""


def figures(R: np.ndarray, baseline: np.ndarray | None, metric: str) -> dict[str, float]:
    """Every figure above for one metric's matrix, keyed by short names.

    ``forgetting_pct`` is NaN for scores that are 0 at chance (ARI, NMI): relative to a
    reference near 0 it explodes, and at exactly 0 it would exist for one run and not for
    another, so every strategy reports the same figures.
    """
    better = higher_is_better(metric)
    relative = not metric.endswith(CHANCE_AT_ZERO)
    return {
        "final": final_average(R),
        "avg_incremental": average_incremental(R),
        "plasticity": plasticity(R),
        "forgetting": average_forgetting(R, better),
        "bwt": backward_transfer(R),
        "fwt": forward_transfer(R, baseline) if baseline is not None else float("nan"),
        "forgetting_pct": relative_forgetting_pct(R, better) if relative else float("nan"),
    }


def _experiences(tidy: pd.DataFrame) -> int:
    """Number of experiences of a run: its largest trained or evaluated index, plus one."""
    return int(max(tidy["eval_exp"].max(), tidy["train_exp"].max())) + 1


def _matrices(rows: pd.DataFrame, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(R, baseline) of one metric's rows.

    Each cell is the mean of its (train_exp, eval_exp) rows' non-NaN values, NaN where there
    is none: a pivot table's cells, without its cost (this runs per metric, strategy and
    seed each time a table or figure is made).
    """
    rows = rows[rows["eval_exp"] >= 0]
    untrained = bool((rows["train_exp"] == -1).any())  # a baseline row, even if all NaN
    rows = rows[rows["value"].notna()]
    after, on = rows["train_exp"].to_numpy(int), rows["eval_exp"].to_numpy(int)
    cell = (after + 1) * size + on  # row 0 of the grid: the untrained model (train_exp -1)
    sums = np.bincount(cell, weights=rows["value"].to_numpy(float), minlength=(size + 1) * size)
    counts = np.bincount(cell, minlength=(size + 1) * size)
    with np.errstate(invalid="ignore"):
        grid = (sums / counts).reshape(size + 1, size)
    return grid[1:], (grid[0] if untrained else None)


def tidy_matrix(tidy: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(R, baseline) of ``metric`` from tidy rows; the baseline is the ``train_exp == -1`` row.

    R is square over every experience of the run, even ones this metric could not measure
    (NaN there). Rows on the union of the test splits (``eval_exp == -1``) are not part of R.
    """
    return _matrices(tidy[tidy["metric"] == metric], _experiences(tidy))


def union_final(tidy: pd.DataFrame, metric: str) -> float:
    """``metric`` on the union of every test split after the stream's last experience.

    NaN when that experience was not trained (a stopped run), as the final average is:
    the accuracy after an earlier experience is no final figure.
    """
    return _union_final(tidy[tidy["metric"] == metric], _experiences(tidy) - 1)


def _union_final(rows: pd.DataFrame, last: int) -> float:
    rows = rows[(rows["eval_exp"] == -1) & (rows["train_exp"] == last)]
    return float(rows["value"].iloc[-1]) if len(rows) else float("nan")


def tidy_figures(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per metric of ``tidy`` (one strategy, one seed) with every figure.

    ``final_union`` is the metric on the union of all test splits after the last
    experience (the all-classes protocol's headline); NaN for metrics without union rows.
    """
    rows, size = [], _experiences(tidy) if len(tidy) else 0
    for metric, mine in tidy.groupby("metric", sort=True):
        R, baseline = _matrices(mine, size)
        if R.size:
            found = figures(R, baseline, metric)
            rows.append({"metric": metric, "final_union": _union_final(mine, size - 1), **found})
    return pd.DataFrame(rows, columns=["metric", "final_union", *FIGURES])
