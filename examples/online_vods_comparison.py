"""Issue 15's comparison: single-pass training over ordered, near-duplicate frames.

    python examples/online_vods_comparison.py              # 3 seeds, ~15 min on 2 CPU cores
    SEEDS=0 python examples/online_vods_comparison.py      # one seed

On ``digits-vods`` (digits-periods' five periods, each training image a "VOD" of 8
near-duplicate consecutive frames), every run trains the same number of steps:

- ``--online --updates-per-batch 4``: one pass per period in arrival order, 4 updates per
  incoming batch: ``naive``, ``replay`` with a MinRed buffer, ``replay`` with a reservoir
  buffer, and ``lwf-ssl+replay`` with MinRed (buffers of 256 frames, half of each step);
- the i.i.d. reference: ``naive`` with the frames shuffled, 4 epochs per period (the same
  number of steps; each frame trained 4 times, in random order).

Each setting is one bench in ``runs/online-vods-<setting>`` (resumed if it exists); the
script prints one table (mean ± std over seeds) of the all-classes accuracies on the test
splits and the final embedding health, from the benches' ``summary.csv``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

OUT = Path(os.environ.get("OUT", "runs"))
SEEDS = os.environ.get("SEEDS", "0,1,2").replace(" ", ",")
COMMON = ["--stream", "digits-vods", "--batch-size", "128", "--eval-protocols", "all",
          "--no-progress", "--seeds", SEEDS, "--out", str(OUT)]  # fmt: skip
ONLINE = ["--online", "--updates-per-batch", "4"]
BUFFER = ["--opt", "replay.mem-size=256"]
SETTINGS = {
    "online-minred": [*ONLINE, "--strategy", "naive,replay,lwf-ssl+replay", *BUFFER,
                      "--opt", "replay.buffer=minred"],
    "online-reservoir": [*ONLINE, "--strategy", "replay", *BUFFER,
                         "--opt", "replay.buffer=reservoir"],
    "shuffled": ["--epochs", "4", "--strategy", "naive"],
}  # fmt: skip
COLUMNS = ["final acc (all-classes linear)", "final acc (all-classes kNN-20)", "plasticity",
           "forgetting", "final NMI (all-classes)", "final eff. rank", "final std ratio",
           "ms/step"]  # fmt: skip
DIGITS = {"final eff. rank": 1, "ms/step": 0}


def bench(setting: str, flags: list[str]) -> Path:
    run = OUT / f"online-vods-{setting}"
    clssl = [sys.executable, "-m", "cl_ssl", "bench"]
    if (run / "bench.json").is_file():
        command = [*clssl, "--resume", str(run), "--no-progress"]
    else:
        command = [*clssl, *COMMON, *flags, "--run-name", run.name]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)  # failures: in the summary
    return run


def main() -> None:
    rows = []
    for setting, flags in SETTINGS.items():
        stats = pd.read_csv(bench(setting, flags) / "summary_stats.csv")
        for strategy, found in stats.groupby("strategy", sort=False):
            cells = found.set_index("column")
            row = {"setting": setting, "strategy": strategy, "seeds": int(cells["n"].max())}
            for column in COLUMNS:
                if column in cells.index:
                    digits = DIGITS.get(column, 3)
                    mean, std = cells.loc[column, "mean"], cells.loc[column, "std"]
                    row[column] = f"{mean:.{digits}f} ± {std:.{digits}f}"
            rows.append(row)
    print(f"digits-vods, seeds {SEEDS}, mean ± std over seeds (test splits)\n")
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
