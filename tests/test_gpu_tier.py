"""examples/study/gpu_tier.sh --device cpu --quick: every stream of the GPU tier, end to end."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

REPO = Path(__file__).resolve().parents[1]


def tiny_pack(tmp_path: Path, per_class: int) -> Path:
    """examples/gpu_data.py --pack of ``per_class`` digits (32 px JPEGs) per CIFAR-10 class."""
    digits, root = load_digits(), tmp_path / "jpegs"
    for split, first in (("train", 0), ("test", per_class)):
        for label in range(10):
            (root / split / f"class{label}").mkdir(parents=True)
            images = digits.images[digits.target == label][first : first + per_class]
            for n, image in enumerate(images):
                pixels = np.kron(image * 255 / 16, np.ones((4, 4))).astype(np.uint8)
                rgb = Image.fromarray(np.stack([pixels] * 3, axis=-1))
                rgb.save(root / split / f"class{label}" / f"{n:04d}.jpg")
    pack = tmp_path / "tiny.tar.gz"
    command = [sys.executable, str(REPO / "examples/gpu_data.py"), "--pack", "--root", str(root)]
    subprocess.run([*command, "--out", str(pack)], check=True, capture_output=True)
    return pack


def tier(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # One strategy in bench (2): the others run end to end in tests/strategies.
    env = {**os.environ, "GPU_CHECK_PYTHON": sys.executable, "OMP_NUM_THREADS": "1",
           "STRATEGIES": "lwf-ssl"}  # fmt: skip
    command = ["bash", str(REPO / "examples/study/gpu_tier.sh"), "--device", "cpu", "--wheels",
               str(tmp_path / "no-wheels"), "--out", str(tmp_path / "tier"), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.scripts  # `make test-scripts`: minutes, apart from `make test`
def test_quick_tier_runs_every_stream_reports_and_resumes_without_training_again(tmp_path):
    bad = tier(tmp_path, "--device", "gpu")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "cuda or cpu" in bad.stderr
    result = tier(tmp_path, "--quick", "--pack", str(tiny_pack(tmp_path, per_class=24)))
    out = tmp_path / "tier"
    assert result.returncode == 0, result.stderr[-3000:] + (out / "report.md").read_text()
    runs = sorted(p.relative_to(out / "runs") for p in (out / "runs").glob("*/*/seed0"))
    assert [str(r) for r in runs] == [
        "a-r18-s0/joint/seed0", "a-r18-s0/naive/seed0", "a-small-s0/joint/seed0",
        "a-small-s0/naive/seed0", "a-small-strategies-s0/lwf-ssl/seed0",
        "c-small-s0/joint/seed0", "c-small-s0/naive/seed0", "d-fifo-s0/replay/seed0",
        "d-minred-s0/naive/seed0", "d-minred-s0/replay/seed0", "d-reservoir-s0/replay/seed0",
    ]  # fmt: skip
    # Finished runs keep no checkpoint (the folder travels back); their metrics stay.
    assert not list((out / "runs").glob("*/*/seed0/checkpoints/*.pt"))
    report = (out / "report.md").read_text()
    assert "all steps passed" in report
    for stream in ("a-small", "c-small", "d", "a-r18"):
        assert (out / "reports" / stream / "report.md").is_file()
    # Every run of every stream has its learned and drop rows, linear and kNN-20.
    rows = [[c.strip() for c in line.split("|")[1:5]] for line in report.splitlines()]
    learned = {(r[0], r[1], r[3]) for r in rows if len(r) == 4 and r[3] in ("linear", "kNN-20")}
    assert learned == {(r.parts[0], r.parts[1], m) for r in runs for m in ("linear", "kNN-20")}
    # The drift manifest took as many frames per category as the data allows (24 // 4).
    frames = (out / "data/frames.csv").read_text().splitlines()
    assert len(frames) == 1 + 4 * 4 * 6
    # A rerun finds every bench finished: nothing trains twice, the report is rewritten.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/*/seed0/results.json")}
    (out / "report.md").unlink()
    again = tier(tmp_path, "--quick", "--pack", str(tmp_path / "tiny.tar.gz"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert (out / "report.md").read_text().count("kNN-20 ") == report.count("kNN-20 ")
    assert (out / "steps.tsv").read_text().count("finished in an earlier call") == 7
