"""Does a budget learn, then forget? Per experience j of one run (strategy, seed):

    learned_j = R[j][j] - b[j]        (trained right after j minus the untrained model)
    drop_j    = R[j][j] - R[T-1][j]   (right after learning j minus the end; j < T-1)

for the all-classes linear probe and kNN-20, plus their means over the stream. A study
budget must first learn (learned >= 0.10 on the experience just learned) before naive's
drop says anything about forgetting (docs/results.md, "Finding the budget"). A second
table gives, per (strategy, metric) over the seeds, the mean of each figure with its 95%
Student-t interval: the first experience's and the stream's mean learned and drop (the
seeds of one bench name merged: ``pair-s0``, ``pair-s1`` are ``pair``).

    python examples/study/learning_and_forgetting.py runs/budget/*/naive/seed*/metrics.csv
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from cl_ssl.evaluation.continual import tidy_matrix

METRICS = {"all_linear": "linear", "all_knn20": "kNN-20"}


def rows(csv: Path) -> list[dict]:
    tidy = pd.read_csv(csv)
    out = []
    for (strategy, seed), run in tidy.groupby(["strategy", "seed"]):
        for metric, name in METRICS.items():
            R, baseline = tidy_matrix(run, metric)
            if baseline is None or np.isnan(R).any():
                continue  # no untrained row, or an unfinished run: nothing to say
            last = len(R) - 1
            learned = [R[j, j] - baseline[j] for j in range(len(R))]
            drop = [R[j, j] - R[last, j] for j in range(last)]
            out.append(
                {
                    "run": csv.parts[-4] if len(csv.parts) >= 4 else str(csv),
                    "strategy": strategy,
                    "seed": seed,
                    "metric": name,
                    "learned per exp": " ".join(f"{v:+.3f}" for v in learned),
                    "mean learned": np.mean(learned),
                    "drop per exp": " ".join(f"{v:+.3f}" for v in drop),
                    "mean drop": np.mean(drop) if drop else np.nan,
                    "first learned": learned[0],
                    "first drop": drop[0] if drop else np.nan,
                }
            )
    return out


def over_seeds(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds ``[95% interval]`` of each figure, per (bench, strategy, metric)."""
    figures = ["first learned", "mean learned", "first drop", "mean drop"]
    out = []
    # One bench per seed (``NAME-s0``, ``NAME-s1``...): seeds of NAME are merged, benches not.
    bench = table["run"].str.replace(r"-s\d+$", "", regex=True).rename("bench")
    groups = table.groupby([bench, "strategy", "metric"], sort=False)
    for (name, strategy, metric), group in groups:
        row = {"bench": name, "strategy": strategy, "metric": metric, "seeds": len(group)}
        for figure in figures:
            values = group[figure].dropna()
            mean = values.mean()
            if len(values) < 2:
                row[figure] = f"{mean:+.3f}"
                continue
            half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / len(values) ** 0.5
            row[figure] = f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"
        out.append(row)
    return pd.DataFrame(out)


if __name__ == "__main__":
    table = pd.DataFrame([r for path in sys.argv[1:] for r in rows(Path(path))])
    shown = table.drop(columns=["first learned", "first drop"])
    print(shown.to_markdown(index=False, floatfmt=".3f"))
    print()
    print(over_seeds(table).to_markdown(index=False))
