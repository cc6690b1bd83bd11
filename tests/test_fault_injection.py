"""A bench SIGKILLed at random moments resumes to exactly the uninterrupted run's metrics.

Moments are drawn (seeded) among the events of the uninterrupted run, a quarter each:
training steps, evaluation passes, checkpoints half written and output files written but
not yet renamed (tests/fault_injection.py forks each run from one process that imported
cl-ssl once, and the run kills itself with SIGKILL at the moment).
After each kill the bench goes on with ``clssl bench --resume`` (or starts again when it
was killed before its ``bench.json`` was in place), forked the same way (one thread, as the
uninterrupted run: the thread count changes float sums), and then every metric equals the
uninterrupted run's, every file parses and nothing half written is left. Set
``CLSSL_FAULT_MOMENTS`` for more or fewer moments than the 12 the suite runs (three per
event; each is a whole bench, and `make test` has a time budget).
"""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

# Three experiences: a first, a middle and a last one for a moment to land in.
BENCH = [
    "bench", "--stream", "split", "--dataset", "digits", "--tasks", "3",
    "--strategy", "naive,lwf-ssl",
    "--epochs", "2", "--batch-size", "32", "--max-images", "64", "--image-size", "8",
    "--eval-batch-size", "64", "--eval-protocols", "all", "--knn-k", "20", "--no-kmeans",
    "--device", "cpu", "--no-progress",
]  # fmt: skip
EVENTS = ("train", "eval", "checkpoint", "rename")
MOMENTS = int(os.environ.get("CLSSL_FAULT_MOMENTS", "12"))


@pytest.fixture(scope="module")
def reference(forks, tmp_path_factory):
    """The uninterrupted bench, and how often each event happened in it."""
    root = tmp_path_factory.mktemp("faults")
    counts, log = root / "counts.json", root / "reference.log"
    out = ["--out", str(root), "--run", "reference"]
    done = forks.run("train", 0, counts, log, *BENCH, *out)
    assert done == {"signal": 0, "code": 0}, log.read_text()[-2000:]
    return root / "reference", json.loads(counts.read_text())


def moment(counts: dict[str, int], index: int) -> tuple[str, int]:
    """The ``index``-th drawn moment: an event (a quarter of the moments each) and its N."""
    draw = random.Random(index)
    event = EVENTS[index % len(EVENTS)]
    return event, draw.randint(1, counts[event])


def parse_every_file(directory: Path) -> int:
    """Read back every file under ``directory``; returns how many were read."""
    read = 0
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        assert not path.name.endswith(".partial"), f"half-written file left: {path}"
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            pd.read_csv(path)
        elif path.suffix == ".pt":
            torch.load(path, map_location="cpu", weights_only=True)
        elif path.suffix == ".png":
            Image.open(path).verify()
        elif path.suffix == ".md":
            assert path.read_text().strip()
        read += 1
    return read


@pytest.mark.parametrize("index", range(MOMENTS))
def test_a_bench_killed_at_a_random_moment_resumes_to_the_same_metrics(
    forks, reference, index, tmp_path
):
    expected, counts = reference
    event, nth = moment(counts, index)
    log, out = tmp_path / "killed.log", ["--out", str(tmp_path), "--run", "killed"]
    killed = forks.run(event, nth, tmp_path / "unused.json", log, *BENCH, *out)
    assert killed["signal"] == signal.SIGKILL, (event, nth, killed, log.read_text()[-2000:])
    directory = tmp_path / "killed"

    # Resumed in a fork too: the same thread count as the reference, so the same numerics.
    if (directory / "bench.json").is_file():
        command = ["bench", "--resume", str(directory), "--no-progress"]
    else:  # killed before the run existed: the same command starts it
        command = [*BENCH, *out]
    log = tmp_path / "again.log"
    again = forks.run("train", 0, tmp_path / "counts.json", log, *command)

    assert again == {"signal": 0, "code": 0}, (event, nth, log.read_text()[-2000:])
    for name in ("naive", "lwf-ssl"):
        got, want = directory / name / "seed0", expected / name / "seed0"
        pd.testing.assert_frame_equal(
            pd.read_csv(got / "metrics.csv"), pd.read_csv(want / "metrics.csv")
        )
        results = json.loads((got / "results.json").read_text())
        assert results["matrices"] == json.loads((want / "results.json").read_text())["matrices"]
    assert parse_every_file(directory) > 10
