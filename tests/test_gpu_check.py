"""examples/gpu_check.sh --device cpu --quick: the GPU check's every step, end to end, here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.data.npz import save_npz

REPO = Path(__file__).resolve().parents[1]


def tiny_cifar(path: Path, per_class: int) -> Path:
    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> ImageTensorDataset:
        labels = torch.arange(10).repeat_interleave(n)
        images = torch.randint(0, 256, (len(labels), 3, 8, 8), generator=generator)
        return ImageTensorDataset(images.to(torch.uint8), labels, tuple("abcdefghij"))

    save_npz(path, LoadedDataset(split(per_class), split(per_class // 2)))
    return path


def check(tmp_path: Path, data: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "report"
    env = {**os.environ, "GPU_CHECK_PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    command = ["bash", str(REPO / "examples/gpu_check.sh"), "--device", "cpu", "--quick",
               "--data", str(data), "--wheels", str(tmp_path / "no-wheels"),
               "--out", str(out), *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600), out


def test_quick_check_runs_every_step_and_reports_each(tmp_path):
    result, out = check(tmp_path, tiny_cifar(tmp_path / "tiny.npz", per_class=8))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    status = {s["step"]: s["status"] for s in report["steps"]}
    assert status == {
        "source": "passed", "wheels": "skipped", "environment": "passed", "imports": "passed",
        "speed-channels-last": "passed", "speed-contiguous": "passed",
        "speed-compile": "skipped", "bench": "passed", "bench-torchrun": "passed",
        "bench-compare": "passed",
    } | ({} if "wandb" not in status else {"wandb": "skipped"})  # fmt: skip
    assert report["environment"]["torch"] == torch.__version__
    speed = report["speed"]["speed-channels-last"]
    assert [r["row"] for r in speed] == ["step", "naive"]
    assert all(r["images_per_s"] > 0 and r["peak_gpu_mb"] is None for r in speed)
    # One process under torchrun is the plain run: on the CPU every metric is identical.
    compare = report["compare"]
    assert compare["metrics_compared"] > 0 and compare["problems"] == []
    assert compare["after_training_max_abs_diff"] <= 1e-6
    cost = report["bench_cost"]["plain"]
    assert cost["experiences"] == 5 and cost["train_s"] > 0 and cost["eval_s"] > 0
    markdown = (out / "report.md").read_text()
    assert "all steps passed" in markdown and "eval / train" in markdown


def test_a_failing_step_is_reported_and_the_others_still_run(tmp_path):
    result, out = check(tmp_path, tmp_path / "absent.npz", "--only", "bench,bench-compare")
    assert result.returncode == 1
    report = json.loads((out / "report.json").read_text())
    assert report["failed"] == ["bench", "bench-compare"]  # no runs to compare either
    status = {s["step"]: s["status"] for s in report["steps"]}
    assert status["source"] == "passed" and status["speed-channels-last"] == "skipped"
    bench = next(s for s in report["steps"] if s["step"] == "bench")
    assert "gpu_data.py" in bench["note"]
    assert "FAILED: bench" in (out / "report.md").read_text()


def test_steps_past_the_budget_fail_without_starting(tmp_path):
    result, out = check(tmp_path, tmp_path / "absent.npz", "--only", "environment", "--budget", "5")
    assert result.returncode == 1
    report = json.loads((out / "report.json").read_text())
    environment = next(s for s in report["steps"] if s["step"] == "environment")
    assert environment["status"] == "failed" and "--budget of 5 s" in environment["note"]
