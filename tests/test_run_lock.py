"""One writer per run directory: --resume, --overwrite or continue of a live run is refused."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cl_ssl.cli import app
from cl_ssl.run_lock import RunInUse, holding

TINY = [
    "bench", "--stream", "split", "--dataset", "digits", "--tasks", "2", "--epochs", "1",
    "--batch-size", "32", "--max-images", "40", "--image-size", "8", "--strategy", "naive",
    "--device", "cpu", "--no-progress",
]  # fmt: skip


def test_a_second_holder_is_refused_naming_the_directory_and_the_first_holder(tmp_path):
    with holding(tmp_path):
        with pytest.raises(RunInUse, match=rf"{tmp_path} .*process {os.getpid()}\)"):
            with holding(tmp_path):
                pass
    with holding(tmp_path):  # released on leaving the block
        pass


def test_a_holder_killed_with_sigkill_leaves_the_directory_free(tmp_path):
    code = (
        "import sys, time; from pathlib import Path; from cl_ssl.run_lock import holding\n"
        "with holding(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(120)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunInUse, match=f"process {holder.pid}"):
            with holding(tmp_path):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with holding(tmp_path):  # the kernel released it with the process: nothing to clean up
        pass


def test_resume_and_overwrite_of_a_run_being_written_exit_2_and_touch_nothing(tmp_path):
    runner = CliRunner()
    out = ["--out", str(tmp_path), "--run", "live"]
    assert runner.invoke(app, [*TINY, *out]).exit_code == 0
    run = tmp_path / "live"
    metrics = run / "naive" / "seed0" / "metrics.csv"
    before = metrics.read_bytes(), metrics.stat().st_mtime_ns
    with holding(run):  # as the bench writing it would
        resumed = runner.invoke(app, ["bench", "--resume", str(run), "--no-progress"])
        overwritten = runner.invoke(app, [*TINY, *out, "--overwrite"])
    for result in (resumed, overwritten):
        assert result.exit_code == 2, result.output
        assert "is being written by another clssl bench" in result.output
        assert len(result.output.strip().splitlines()) == 1
    assert (metrics.read_bytes(), metrics.stat().st_mtime_ns) == before


def test_continue_of_a_run_being_written_exits_2_and_trains_nothing(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, [*TINY, "--out", str(tmp_path), "--run", "live"]).exit_code == 0
    run = tmp_path / "live"
    seed = run / "naive" / "seed0"
    (seed / "checkpoints" / "exp1.pt").unlink()  # the next period is still to train
    deployed = tmp_path / "deployed"  # a seed folder copied out of its bench: its own lock
    shutil.copytree(seed, deployed)
    for folder, holder in ((seed, run), (deployed, deployed)):
        command = ["continue", "--from", str(folder / "checkpoints" / "exp0.pt"), "--no-progress"]
        with holding(holder):  # as a bench --resume, or another continue, writing it would
            refused = runner.invoke(app, command)
        assert refused.exit_code == 2, refused.output
        assert f"{holder} is being written by another clssl" in refused.output
        assert len(refused.output.strip().splitlines()) == 1
        assert not (folder / "checkpoints" / "exp1.pt").exists()
        resumed = runner.invoke(app, command)  # the lock released, the same call trains
        assert resumed.exit_code == 0, resumed.output
        assert (folder / "checkpoints" / "exp1.pt").is_file()
