"""Step time of one process vs torchrun with N processes, on the same bench and global batch.

    python examples/ddp_step_time.py                       # 1 vs 2 processes, on this machine
    python examples/ddp_step_time.py --procs 1,2,4 -- --device cuda --backbone resnet18

Each row runs ``clssl bench`` (``naive`` and ``lwf-ssl`` on digits-periods unless other bench
flags follow ``--``) in a fresh process group and reads the training time per step and
images/s from the run's ``summary.csv``. On a CPU the processes share the cores (torch
threads per process = cores / N), so the table measures the cost of the gathers and the
all-reduce rather than a speed-up; on GPUs each process has its own device.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

DEFAULT_BENCH = ["--stream", "digits-periods", "--strategy", "naive,lwf-ssl", "--epochs", "5",
                 "--batch-size", "128", "--no-progress", "--no-linear-probe", "--no-kmeans",
                 "--no-checkpoints"]  # fmt: skip


def run(procs: int, bench: list[str], out: Path) -> pd.DataFrame:
    name = f"p{procs}"
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // procs)))
    if procs == 1:
        command = [sys.executable, "-m", "cl_ssl", "bench"]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc_per_node", str(procs), "-m", "cl_ssl", "bench"]  # fmt: skip
    command += [*bench, "--out", str(out), "--run-name", name]
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    summary = pd.read_csv(out / name / "summary.csv")
    summary.insert(0, "processes", procs)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", default="1,2", help="Process counts, e.g. 1,2,4.")
    args, rest = parser.parse_known_args()
    bench = [a for a in rest if a != "--"] or DEFAULT_BENCH
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(int(p), bench, Path(tmp)) for p in args.procs.split(",")]
    table = pd.concat(rows)
    table["images/s"] = table["images/step"] / table["ms/step"] * 1000
    columns = ["processes", "strategy", "images/step", "ms/step", "images/s", "train s"]
    print(table[columns].to_markdown(index=False, floatfmt=".1f"))


if __name__ == "__main__":
    main()
