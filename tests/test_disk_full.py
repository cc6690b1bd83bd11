"""A bench whose disk fills up stops with one line, keeps what it wrote, and resumes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from cl_ssl.atomic import format_size
from cl_ssl.checkpoint import load_training_state
from cl_ssl.cli import app

BENCH = [
    "bench", "--stream", "digits-periods", "--strategy", "naive,lwf-ssl", "--epochs", "1",
    "--batch-size", "32", "--max-images", "40", "--image-size", "8", "--device", "cpu",
    "--no-progress",
]  # fmt: skip


def _one_line_failure(result) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if "error" in line or "failed" in line]
    return line


def test_a_full_disk_fails_the_run_with_one_line_and_resume_finishes_it(tmp_path, full_disk):
    runner = CliRunner()
    reference = runner.invoke(app, [*BENCH, "--out", str(tmp_path), "--run", "full"])
    assert reference.exit_code == 0, reference.output

    full_disk.fill_at = "exp1.pt"  # full from naive's second checkpoint on
    stopped = runner.invoke(app, [*BENCH, "--out", str(tmp_path), "--run", "stopped"])
    line = _one_line_failure(stopped)
    run = tmp_path / "stopped"
    checkpoints = run / "naive" / "seed0" / "checkpoints"
    assert line.startswith(
        f"failed: naive (seed 0) failed at experience 1, epoch 1, step 2: DiskFull: no space "
        f"left for {checkpoints / 'exp1.pt'}: it needs "
    )
    assert line.endswith(f"is free on its disk: free space, then clssl bench --resume {run}")
    # failure.json and failures.json hit the full disk too: neither is half-written.
    assert full_disk.failed == ["exp1.pt", "failure.json", "failures.json"]
    assert not list(run.rglob("*.partial"))
    assert [p.name for p in checkpoints.iterdir()] == ["exp0.pt"]
    assert load_training_state(checkpoints / "exp0.pt")[1].experience == 0
    assert not (run / "lwf-ssl").exists()  # the bench stopped: it would only fail again

    full_disk.free()
    resumed = runner.invoke(app, ["bench", "--resume", str(run), "--no-progress"])
    assert resumed.exit_code == 0, resumed.output
    for name in ("naive", "lwf-ssl"):
        expected = pd.read_csv(tmp_path / "full" / name / "seed0" / "metrics.csv")
        got = pd.read_csv(run / name / "seed0" / "metrics.csv")
        pd.testing.assert_frame_equal(got, expected)
    # The size the message asked for is the checkpoint's.
    assert f"it needs {format_size((checkpoints / 'exp1.pt').stat().st_size)}," in line


def test_a_disk_full_before_any_run_is_one_line(tmp_path, full_disk):
    full_disk.fill()
    result = CliRunner().invoke(app, [*BENCH, "--out", str(tmp_path), "--run", "x"])
    line = _one_line_failure(result)
    assert line.startswith(f"error: no space left for {Path(tmp_path) / 'x' / 'bench.json'}: ")
    assert line.endswith("free on its disk: free space, then run again")
    assert not list(tmp_path.rglob("*.partial"))
