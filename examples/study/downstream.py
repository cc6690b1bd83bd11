"""The downstream table of a study: `clssl finetune` accuracies per (strategy, seed).

Each ``STRATEGY-sSEED.csv`` (the classification report `clssl finetune --out` writes, one
per final encoder) gives the head's test accuracy A_s(strategy). Per strategy over its
seeds: the accuracies, mean ± std with the 95% Student-t interval, and against the same
seed's naive encoder

    d_s = A_s(strategy) - A_s(naive)     mean_s d_s with its 95% t-interval,
    gap closed = mean_s d_s / mean_s (A_s(joint) - A_s(naive))   (ratio of means),

over the seeds where naive (and, for the gap, joint) have a file too, with `clssl report`'s
paired arithmetic (cl_ssl/reporting/paired.py).

    python examples/study/downstream.py runs/study/finetune/*.csv
"""

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cl_ssl.reporting.paired import gap_closed, paired_difference
from cl_ssl.reporting.summary import interval

NAME = re.compile(r"^(?P<strategy>.+)-s(?P<seed>\d+)$")
LOWER, UPPER = "naive", "joint"


def accuracies(paths: list[Path]) -> pd.DataFrame:
    """A (seed x strategy) table of test accuracies from finetune CSVs named STRATEGY-sSEED."""
    rows = []
    for path in paths:
        found = NAME.match(path.stem)
        if found is None:
            raise SystemExit(f"error: {path.name} is not named STRATEGY-sSEED.csv")
        report = pd.read_csv(path, index_col=0)
        rows.append((found["strategy"], int(found["seed"]), float(report.loc["accuracy"].iloc[0])))
    frame = pd.DataFrame(rows, columns=["strategy", "seed", "accuracy"])
    return frame.pivot_table(index="seed", columns="strategy", values="accuracy", aggfunc="first")


def _ci(values: pd.Series, sign: str = "+") -> str:
    """The 95% t-interval of the mean, signed (differences) or not (``sign=""``)."""
    low, high = interval(values)
    return f"[{low:{sign}.3f}, {high:{sign}.3f}]"


def table(acc: pd.DataFrame) -> pd.DataFrame:
    """One row per strategy, best mean first: seeds, mean ± std [CI], paired − naive, gap."""
    out = []
    for strategy in acc.columns:
        values = acc[strategy].dropna()
        row = {
            "encoder": strategy,
            "seeds": " / ".join(str(s) for s in values.index),
            "accuracy per seed": " / ".join(f"{v:.3f}" for v in values),
            "mean ± std [95% CI]": f"{values.mean():.3f} ± {values.std(ddof=1):.3f} "
            + _ci(values, sign=""),
            "− naive, paired [95% CI]": "",
            "gap closed (ratio of means)": "",
        }
        if LOWER in acc and strategy != LOWER:
            diff = paired_difference(acc, strategy, LOWER)
            row["− naive, paired [95% CI]"] = f"{diff.mean():+.3f} {_ci(diff)}"
            if UPPER in acc:
                closed = gap_closed(acc, strategy, LOWER, UPPER)[1]
                share = "no gap" if np.isnan(closed) else f"{closed:.2f}"
                row["gap closed (ratio of means)"] = share
        elif strategy == LOWER:
            row["− naive, paired [95% CI]"] = row["gap closed (ratio of means)"] = "0"
        row["_mean"] = values.mean()
        out.append(row)
    return pd.DataFrame(out).sort_values("_mean", ascending=False).drop(columns="_mean")


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python examples/study/downstream.py DIR/STRATEGY-sSEED.csv ...")
    print(
        table(accuracies([Path(a) for a in argv])).to_markdown(index=False, disable_numparse=True)
    )


if __name__ == "__main__":
    main(sys.argv[1:])
