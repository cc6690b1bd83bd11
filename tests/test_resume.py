"""`clssl bench --resume`: a bench killed mid-experience finishes with the same metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from cl_ssl.cli import app

# Three experiences: the kill lands in the second, the third follows it after the resume.
# 3 epochs of 135 images: the second experience trains long enough for the kill to land in it.
BENCH = [
    "bench", "--stream", "split", "--dataset", "digits", "--tasks", "3",
    "--strategy", "naive,lwf-ssl", "--epochs", "3", "--batch-size", "32", "--max-images", "150",
    "--image-size", "8", "--device", "cpu", "--no-progress",
]  # fmt: skip


def clssl(*args: str) -> list[str]:
    return [sys.executable, "-m", "cl_ssl", *args]


def test_a_bench_killed_in_its_second_experience_resumes_to_the_same_metrics(tmp_path: Path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # The reference in this process: the killed bench is the one that needs a process.
    reference = CliRunner().invoke(app, [*BENCH, "--out", str(tmp_path), "--run", "full"])
    assert reference.exit_code == 0, reference.output

    process = subprocess.Popen(
        clssl(*BENCH, "--out", str(tmp_path), "--run", "killed"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = tmp_path / "killed" / "naive" / "seed0" / "checkpoints"
    deadline = time.monotonic() + 300
    while not (checkpoints / "exp0.pt").exists():  # experience 0 done: 1 is training now
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (checkpoints / "exp1.pt").exists(), "killed too late: not inside experience 1"
    assert not (tmp_path / "killed" / "lwf-ssl").exists()

    refused = CliRunner().invoke(app, [*BENCH, "--out", str(tmp_path), "--run", "killed"])
    assert refused.exit_code == 2  # never silently reuses a run directory

    resumed = subprocess.run(
        clssl("bench", "--resume", str(tmp_path / "killed"), "--no-progress"),
        env=env,
        capture_output=True,
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    for name in ("naive", "lwf-ssl"):
        expected = pd.read_csv(tmp_path / "full" / name / "seed0" / "metrics.csv")
        got = pd.read_csv(tmp_path / "killed" / name / "seed0" / "metrics.csv")
        pd.testing.assert_frame_equal(got, expected)
    summary = pd.read_csv(tmp_path / "killed" / "summary.csv")
    assert sorted(summary["strategy"]) == ["lwf-ssl", "naive"]


def test_resume_refuses_a_flag_that_contradicts_the_run(tiny_bench):
    from cl_ssl.bench import run_bench

    config = tiny_bench()
    run_bench(config)
    directory = config.out / config.run_name
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "--resume", str(directory), "--epochs", "7"])
    assert result.exit_code == 2
    assert "--epochs gives train.epochs=7, the run has 1" in result.output
    result = runner.invoke(app, ["bench", "--resume", str(directory), "--overwrite"])
    assert result.exit_code == 2 and "pass one of them" in result.output
    # The run's own values, and a finished run, are fine: nothing is retrained.
    before = (directory / "naive" / "seed0" / "results.json").stat().st_mtime_ns
    result = runner.invoke(app, ["bench", "--resume", str(directory), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert (directory / "naive" / "seed0" / "results.json").stat().st_mtime_ns == before


def test_resume_names_a_folder_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--resume", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path}/bench.json not found: --resume takes a run directory" in result.output
