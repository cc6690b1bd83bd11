"""examples/gpu_check.sh --device cpu --quick: the GPU check's every step, end to end, here."""

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

REPO = Path(__file__).resolve().parents[1]
GPU_DATA = REPO / "examples/gpu_data.py"


def write_tiny_cifar(root: Path, per_class: int) -> Path:
    """``root/{train,test}/<class>/<n>.jpg`` (CIFAR-10's layout): digits at 32 px, 10 classes."""
    digits = load_digits()
    for split, count, offset in (("train", per_class, 0), ("test", per_class // 2, per_class)):
        for label in range(10):
            (root / split / f"class{label}").mkdir(parents=True)
            for n, image in enumerate(digits.images[digits.target == label][offset:][:count]):
                pixels = np.repeat(np.repeat(image * 255 / 16, 4, 0), 4, 1).astype(np.uint8)
                rgb = Image.fromarray(np.stack([pixels] * 3, axis=-1))
                rgb.save(root / split / f"class{label}" / f"{n:04d}.jpg", quality=90)
    return root


def gpu_data(*args: object) -> str:
    command = [sys.executable, str(GPU_DATA), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def tiny_pack(tmp_path: Path, per_class: int) -> Path:
    root = write_tiny_cifar(tmp_path / "jpegs", per_class)
    gpu_data("--pack", "--root", root, "--out", tmp_path / "tiny.tar.gz")
    return tmp_path / "tiny.tar.gz"


def test_the_pack_unpacks_to_the_same_files_and_packing_is_deterministic(tmp_path):
    root = write_tiny_cifar(tmp_path / "jpegs", per_class=6)
    packed = tmp_path / "a.tar.gz"
    assert "90 JPEG files" in gpu_data("--pack", "--root", root, "--out", packed)
    gpu_data("--pack", "--root", root, "--out", tmp_path / "b.tar.gz")
    assert packed.read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    gpu_data("--unpack", packed, "--to", tmp_path / "out")
    files = sorted(p.relative_to(root) for p in root.rglob("*.jpg"))
    out = tmp_path / "out/cifar10"  # every file of the pack is there, and nothing else
    assert len(files) == 90
    assert sorted(p.relative_to(out) for p in (tmp_path / "out").rglob("*") if p.is_file()) == files
    assert all(filecmp.cmp(root / f, out / f, shallow=False) for f in files)
    # A sample: the same seeded 2 test images per class on every call, all of the training.
    gpu_data("--pack", "--root", root, "--test-per-class", 2, "--out", tmp_path / "c.tar.gz")
    gpu_data("--unpack", tmp_path / "c.tar.gz", "--to", tmp_path / "sample")
    assert len(list((tmp_path / "sample/cifar10/train").rglob("*.jpg"))) == 60
    assert len(list((tmp_path / "sample/cifar10/test").rglob("*.jpg"))) == 20


def check(tmp_path: Path, data: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "report"
    env = {**os.environ, "GPU_CHECK_PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    command = ["bash", str(REPO / "examples/gpu_check.sh"), "--device", "cpu", "--quick",
               "--pack", str(data), "--wheels", str(tmp_path / "no-wheels"),
               "--out", str(out), *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600), out


@pytest.mark.scripts  # `make test-scripts`: minutes, apart from `make test`
def test_quick_check_runs_every_step_and_reports_each(tmp_path):
    result, out = check(tmp_path, tiny_pack(tmp_path, per_class=8))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    status = {s["step"]: s["status"] for s in report["steps"]}
    assert status == {
        "source": "passed", "wheels": "skipped", "data": "passed", "environment": "passed",
        "imports": "passed",
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
    result, out = check(tmp_path, tmp_path / "absent.tar.gz", "--only", "bench,bench-compare")
    assert result.returncode == 1
    report = json.loads((out / "report.json").read_text())
    assert report["failed"] == ["data", "bench", "bench-compare"]  # no runs to compare either
    status = {s["step"]: s["status"] for s in report["steps"]}
    assert status["source"] == "passed" and status["speed-channels-last"] == "skipped"
    bench = next(s for s in report["steps"] if s["step"] == "bench")
    assert "gpu_data.py" in bench["note"]
    assert "FAILED: data, bench" in (out / "report.md").read_text()


def test_steps_past_the_budget_fail_without_starting(tmp_path):
    result, out = check(tmp_path, tmp_path / "none.tgz", "--only", "environment", "--budget", "5")
    assert result.returncode == 1
    report = json.loads((out / "report.json").read_text())
    environment = next(s for s in report["steps"] if s["step"] == "environment")
    assert environment["status"] == "failed" and "--budget of 5 s" in environment["note"]


@pytest.mark.parametrize("script", ["examples/gpu_check.sh", "examples/study/gpu_tier.sh"])
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--bogus"], "unknown argument '--bogus'"),
        (["--device", "tpu"], "--device must be cuda or cpu, got 'tpu'"),
        (["--budget"], "--budget needs a value"),
        (["--budget", "ten"], "--budget takes seconds, got 'ten'"),
        (["--only"], "--only needs a value"),
    ],
)
def test_both_gpu_scripts_refuse_a_bad_flag_in_one_line_before_writing_anything(
    tmp_path, script, args, says
):
    """One parser for both (examples/gpu_env.sh's gpu_args): the same flags, the same errors."""
    out = tmp_path / "out"
    command = ["bash", str(REPO / script), "--out", str(out), *args]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and says in result.stderr and script in result.stderr
    assert not out.exists()


def test_the_tier_refuses_bad_seeds_before_writing_anything(tmp_path):
    out = tmp_path / "out"
    command = ["bash", str(REPO / "examples/study/gpu_tier.sh"), "--out", str(out)]
    env = {**os.environ, "SEEDS": "0,a"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "SEEDS takes a comma list of seeds, got '0,a'" in result.stderr
    assert not out.exists()
