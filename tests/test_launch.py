"""``clssl bench --launcher local --jobs N``: the inline bench's results, runs side by side.

``--launcher ray``: tests/test_launch_ray.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cl_ssl.cli import app
from cl_ssl.config import BenchConfig, TrainConfig
from cl_ssl.launch import visible_gpus

# Three experiences: a run stopped after its first checkpoint still has two to train (the
# other runs are still in flight when the pool breaks).
TINY = [
    "--stream", "split", "--dataset", "digits", "--tasks", "3", "--epochs", "1",
    "--batch-size", "32", "--max-images", "40", "--image-size", "8", "--device", "cpu",
    "--no-progress",
]  # fmt: skip
GRID = ["--strategy", "naive,lwf-ssl", "--seeds", "0,1"]
LOCAL = ["--launcher", "local", "--jobs", "2", "--threads-per-job", "1"]
RUNS = [f"{s}/seed{k}" for k in (0, 1) for s in ("naive", "lwf-ssl")]


def clssl(*args: str) -> list[str]:
    return [sys.executable, "-m", "cl_ssl", "bench", *args]


def one_thread() -> dict[str, str]:
    """The environment of an inline bench at one thread, as each local job runs."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def failures(directory: Path) -> list[dict]:
    """``failures.json`` without the directories (two runs, two folders)."""
    found = json.loads((directory / "failures.json").read_text())["failures"]
    return [{k: v for k, v in f.items() if k != "directory"} for f in found]


def spawned_workers(parent: int) -> list[int]:
    """The executor's worker processes of ``parent`` (not its resource tracker)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError, PermissionError):
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == parent and b"spawn_main" in command:
            found.append(int(entry))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds workers in /proc")
def test_local_jobs_give_the_inline_metrics_and_a_killed_job_resumes_to_them(
    tmp_path, inline_bench
):
    inline = inline_bench(*TINY, *GRID)  # at one thread, shared with test_launch_ray.py
    # The local bench is compared with the inline one after a kill and a resume: the runs
    # the kill did not touch, and those --resume finished, all give the inline bytes.
    # Kill one worker once the first run has a checkpoint: the bench itself lives on,
    # records every run the broken pool took with it, exits 1; --resume finishes them.
    process = subprocess.Popen(
        clssl(*TINY, *GRID, *LOCAL, "--out", str(tmp_path), "--run", "killed"),
        env=one_thread(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        checkpoint = tmp_path / "killed" / "naive" / "seed0" / "checkpoints" / "exp0.pt"
        deadline = time.monotonic() + 300
        while not checkpoint.exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        workers = spawned_workers(process.pid)
        assert len(workers) == 2  # --jobs 2: the runs are in processes of their own
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = process.communicate(timeout=300)
    finally:  # a failed assertion leaves no bench running
        for pid in [*spawned_workers(process.pid), process.pid]:
            if process.poll() is None:
                os.kill(pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == 1, stderr.decode()[-2000:]
    recorded = failures(tmp_path / "killed")
    assert recorded and {f["error"] for f in recorded} == {"BrokenProcessPool"}
    assert "its process ended before the run did" in stderr.decode()
    assert not (tmp_path / "killed" / "lwf-ssl" / "seed1" / "results.json").exists()

    resumed = subprocess.run(
        clssl("--resume", str(tmp_path / "killed"), "--no-progress", *LOCAL),
        env=one_thread(),
        capture_output=True,
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert failures(tmp_path / "killed") == failures(inline) == []
    for run in RUNS:  # every figure of every run, to the last digit
        expected = (inline / run / "metrics.csv").read_bytes()
        assert (tmp_path / "killed" / run / "metrics.csv").read_bytes() == expected, run
    summary = (tmp_path / "killed" / "summary.md").read_text()
    assert "| lwf-ssl" in summary and "| naive" in summary and "seeds 0, 1" in summary


def test_a_run_failing_in_a_job_is_recorded_as_inline(tmp_path):
    # lambda = 1e300 overflows lwf-ssl's loss from experience 1's first step (test_failures).
    args = [*TINY, "--strategy", "lwf-ssl,naive", "--opt", "lwf-ssl.lambda=1e300"]
    runner = CliRunner()
    inline = runner.invoke(app, ["bench", *args, "--out", str(tmp_path), "--run", "inline"])
    local = runner.invoke(
        app, ["bench", *args, *LOCAL, "--out", str(tmp_path), "--run", "local"]
    )
    assert inline.exit_code == local.exit_code == 1
    recorded = failures(tmp_path / "local")
    assert recorded == failures(tmp_path / "inline")
    assert [(f["name"], f["experience"], f["error"]) for f in recorded] == [
        ("lwf-ssl", 1, "NonFiniteLoss")
    ]
    assert (tmp_path / "local" / "naive" / "seed0" / "results.json").is_file()
    assert "failed: lwf-ssl (seed 0) failed at experience 1" in local.output


def test_jobs_need_the_local_launcher_and_resume_may_change_how_runs_run():
    with pytest.raises(ValueError, match="add --launcher local"):
        BenchConfig(stream="digits-periods", jobs=2)
    with pytest.raises(ValueError, match="--jobs must be at least 1"):
        BenchConfig(stream="digits-periods", launcher="local", jobs=0)
    result = CliRunner().invoke(app, ["bench", *TINY, "--launcher", "slurm"])
    assert result.exit_code == 2 and "unknown launcher 'slurm'" in result.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--gpus-per-run", "0.5"], "--gpus-per-run sets how Ray runs the runs: add --launcher"),
        (["--launcher", "local", "--address", "auto"], "--address sets how Ray runs the runs"),
        (["--launcher", "ray", "--jobs", "2"], "--jobs and --threads-per-job are --launcher"),
        (["--launcher", "ray", "--gpus-per-run", "2"], "--gpus-per-run must be in [0, 1], got 2.0"),
        (["--launcher", "ray", "--max-retries", "-1"], "--max-retries must be at least 0, got -1"),
    ],
)
def test_a_launcher_flag_without_its_launcher_is_one_line(tmp_path, flags, message):
    result = CliRunner().invoke(app, ["bench", *TINY, *flags, "--out", str(tmp_path)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {message}")
    assert not any(tmp_path.iterdir())


def test_without_ray_the_ray_launcher_names_the_extra_before_any_run(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    result = CliRunner().invoke(app, ["bench", *TINY, "--launcher", "ray", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --launcher ray needs Ray: pip install 'cl-ssl[ray]'"
    assert not any(tmp_path.iterdir())


def test_resume_takes_the_launcher_from_the_command_line(tmp_path):
    from cl_ssl.experiment_file import resume_config
    from cl_ssl.outputs import write_json
    from cl_ssl.run_config import bench_config_to_dict

    stored = BenchConfig(
        stream="digits-periods", launcher="local", jobs=4, out=tmp_path, run_name="r"
    )
    (tmp_path / "r").mkdir()
    write_json(tmp_path / "r" / "bench.json", bench_config_to_dict(stored))
    assert resume_config(tmp_path / "r", {}, False).jobs == 4  # as it ran
    again = resume_config(tmp_path / "r", {"launcher": "inline"}, False)
    assert (again.launcher, again.jobs) == ("inline", 1)
    on_ray = resume_config(tmp_path / "r", {"launcher": "ray", "gpus_per_run": 0.5}, False)
    assert (on_ray.jobs, on_ray.threads_per_job, on_ray.gpus_per_run) == (1, None, 0.5)
    same = resume_config(tmp_path / "r", {"launcher": "local"}, False)
    assert same.jobs == 4  # the same launcher keeps its flags
    with pytest.raises(ValueError, match="--epochs gives train.epochs=3"):
        resume_config(tmp_path / "r", {"train.epochs": 3, "jobs": 2}, False)


def test_each_job_gets_one_of_the_visible_gpus(monkeypatch):
    import queue

    import torch

    from cl_ssl.launch import _start

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert visible_gpus("auto") == ["3", "5"]  # ids as the parent sees them
    assert visible_gpus("cpu") == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpus("cuda") == ["0", "1"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert visible_gpus("auto") == []
    # A starting worker takes the next id and sees that GPU only, as cuda:0; None (no GPU
    # for it) keeps the parent's view.
    slots = queue.Queue()
    for device in ("5", None):
        slots.put(device)
    threads = torch.get_num_threads()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.setenv("OMP_NUM_THREADS", str(threads))
    _start(threads, slots)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    _start(threads, slots)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3,5"


def test_train_config_keeps_one_method_per_run():
    # A grid's method options name its methods; each run gets only its own method's.
    train = TrainConfig(method="simclr,byol", method_options={"simclr": {"temperature": "0.2"}})
    assert BenchConfig(stream="digits-periods", train=train).methods == ("simclr", "byol")
    with pytest.raises(ValueError, match="--method-opt vicreg"):
        TrainConfig(method="simclr,byol", method_options={"vicreg": {"x": "1"}})
    with pytest.raises(ValueError, match="repeats a method"):
        BenchConfig(stream="digits-periods", train=TrainConfig(method="simclr,simclr"))
