"""``--launcher ray``: the inline bench's results, each run a Ray task; a dead worker's run reruns.

One Ray instance (2 CPUs, no dashboard) serves the module: the bench joins this process's
session (:class:`cl_ssl.launch_ray.RayPool`) instead of starting its own, so Ray starts once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from cl_ssl.cli import app

if os.environ.get("CI", "").lower() == "true":  # CI installs the extra (make setup):
    import ray  # there, a missing Ray is a failure
else:
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'cl-ssl[ray]'")

# Three experiences (as test_launch.py, which shares the inline bench): a run whose worker
# dies at its first checkpoint still has two to train.
TINY = [
    "--stream", "split", "--dataset", "digits", "--tasks", "3", "--epochs", "1",
    "--batch-size", "32", "--max-images", "40", "--image-size", "8", "--device", "cpu",
    "--no-progress",
]  # fmt: skip
GRID = ["--strategy", "naive,lwf-ssl", "--seeds", "0,1"]
RAY = ["--launcher", "ray", "--cpus-per-run", "1"]
RUNS = [f"{s}/seed{k}" for k in (0, 1) for s in ("naive", "lwf-ssl")]


def kill_once(arm: Path):
    """A Ray worker set-up: the worker dies right after writing a checkpoint, once, when armed.

    ``arm`` is a file: the first worker to delete it kills itself (``os._exit``), as a
    process killed by the OOM killer would go.
    """

    def setup() -> None:
        import os

        replace = os.replace

        def replace_then_die(src, dst, *args, **kwargs):
            replace(src, dst, *args, **kwargs)
            if os.fspath(dst).endswith(".pt"):
                try:
                    os.unlink(arm)  # one worker wins, once
                except FileNotFoundError:
                    return
                os._exit(1)

        os.replace = replace_then_die

    return setup


@pytest.fixture(scope="module")
def armed(tmp_path_factory):
    """This module's Ray session; the path that arms one worker's death."""
    arm = tmp_path_factory.mktemp("ray") / "kill-once"
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"worker_process_setup_hook": kill_once(arm)},
    )
    yield arm
    ray.shutdown()


@pytest.fixture
def one_thread():
    """The inline bench at one thread, as each --cpus-per-run 1 task runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def failures(directory: Path) -> list[dict]:
    found = json.loads((directory / "failures.json").read_text())["failures"]
    return [{k: v for k, v in f.items() if k != "directory"} for f in found]


def test_ray_tasks_give_the_inline_metrics_and_a_killed_one_reruns_to_them(
    tmp_path, armed, inline_bench
):
    runner = CliRunner()
    inline = inline_bench(*TINY, *GRID)  # at one thread, shared with test_launch.py
    armed.touch()  # the first run to write a checkpoint loses its worker there
    args = ["bench", *TINY, *GRID, *RAY, "--out", str(tmp_path), "--run", "ray"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert not armed.exists()  # a worker did die; Ray reran its run from the checkpoint
    for run in RUNS:  # every figure of every run, to the last digit
        expected = (inline / run / "metrics.csv").read_bytes()
        assert (tmp_path / "ray" / run / "metrics.csv").read_bytes() == expected, run
    assert failures(tmp_path / "ray") == failures(inline) == []
    summary = (tmp_path / "ray" / "summary.md").read_text()
    assert "| lwf-ssl" in summary and "| naive" in summary and "seeds 0, 1" in summary


def test_a_failing_run_is_recorded_as_inline(tmp_path, armed):
    # lambda = 1e300 overflows lwf-ssl's loss from experience 1's first step (test_failures):
    # the task returns the failure (Ray reruns only a task whose worker died).
    args = [*TINY, "--strategy", "lwf-ssl,naive", "--opt", "lwf-ssl.lambda=1e300", *RAY]
    result = CliRunner().invoke(app, ["bench", *args, "--out", str(tmp_path), "--run", "r"])
    assert result.exit_code == 1
    recorded = failures(tmp_path / "r")
    assert [(f["name"], f["experience"], f["error"]) for f in recorded] == [
        ("lwf-ssl", 1, "NonFiniteLoss")
    ]
    assert (tmp_path / "r" / "naive" / "seed0" / "results.json").is_file()
    assert result.output.count("failed: lwf-ssl (seed 0) failed at experience 1") == 1


def test_evolve_individuals_as_ray_tasks_score_as_in_process(tmp_path, armed, one_thread):
    from cl_ssl.evolve.run import BenchFitness, load_settings

    args = ["evolve", "--rounds", "1", "--population", "2", "--tournament", "2", "--jobs", "2",
            "--strategy", "lwf-ssl", *TINY, *RAY, "--out", str(tmp_path), "--run", "e"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    history = pd.read_csv(tmp_path / "e" / "history.csv")
    assert list(history["id"]) == [0, 1, 2]
    again = BenchFitness(load_settings(tmp_path / "e"), tmp_path / "again")
    for _, row in history.iterrows():  # each individual's fitness, recomputed here
        weights = {"lwf-ssl.lambda": float(row["lwf-ssl.lambda"])}
        assert again(weights, int(row["id"])) == row["fitness"]
