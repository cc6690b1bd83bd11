"""Shared fixtures: tiny streams and configs, and data that skips (or fails in CI)."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

# Under pytest-xdist (`make test` runs one worker per core) each worker, and every process it
# starts, computes on one thread: two workers with torch's default of one thread per core
# would oversubscribe the cores, and OpenMP threads that wait on a busy core make a step many
# times slower. Set before numpy and torch load, which read it once.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
import pytest
from PIL import Image

import cl_ssl  # noqa: F401  (warning filters)
from cl_ssl.config import BenchConfig, TrainConfig
from cl_ssl.streams import StreamOptions

# The suite's longest tests (each a minute or more of whole benches in subprocesses) start
# first: under xdist a long test drawn last keeps one worker busy while the other idles.
LONGEST_FIRST = (
    "test_resume.py::test_a_bench_killed",
    "test_launch.py",
    "test_launch_ray.py",
    "test_distributed.py",
    "evolve/test_run.py",
    "test_disk_full.py",
    "test_periodic.py",
    "test_fault_injection.py",
    "test_gpu_check.py",
    "test_gpu_tier.py",
    "test_interim.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not any(name in item.nodeid for name in LONGEST_FIRST))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "drawn_figures: the bench figures are drawn in full (see undrawn_figures)"
    )


@pytest.fixture(autouse=True)
def undrawn_figures(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bench in this process builds its figures but writes them blank, unless the test is
    marked ``drawn_figures``.

    Drawing the four figures (text layout, Agg) is ~3 s of a tiny bench's ~7: every figure
    is still built from the bench's rows (every plotting call runs) and written through the
    same atomic write as a real PNG, blank, at 10 dpi. The figure tests are marked; benches
    in subprocesses (clssl, torchrun, tests/fault_injection.py) draw in full.
    """
    if request.node.get_closest_marker("drawn_figures"):
        return
    from cl_ssl.reporting import plots

    def save_blank(fig, path: Path) -> Path:
        fig.clear()
        plots.write_figure(path, fig, dpi=10)
        plots.plt.close(fig)
        return path

    monkeypatch.setattr(plots, "_save", save_blank)


@pytest.fixture(scope="session")
def made_once(tmp_path_factory: pytest.TempPathFactory):
    """``made_once(name, make)``: a folder ``make(folder)`` fills once per session.

    Shared by the xdist workers (under the session's folder, with a file lock): a worker that
    asks while another is making it waits, then reads the same files. For reference runs that
    several tests compare with.
    """
    from filelock import FileLock  # a dependency of torch

    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent  # this session's folder, above each worker's own

    def made(name: str, make) -> Path:
        folder = root / f"made-once-{name}"
        with FileLock(f"{folder}.lock"):
            if not (folder / ".done").is_file():
                shutil.rmtree(folder, ignore_errors=True)  # a failed attempt's
                folder.mkdir()
                make(folder)
                (folder / ".done").touch()
        return folder

    return made


@pytest.fixture
def inline_bench(made_once):
    """``inline_bench(*flags)``: the ``clssl bench`` of these flags, inline at one thread,
    run once per session (``made_once``); its run directory.

    The bench that local jobs (test_launch.py) and Ray tasks (test_launch_ray.py) must give
    to the byte, as each of their --threads-per-job 1 jobs and --cpus-per-run 1 tasks runs.
    """
    import hashlib

    def run(*flags: str) -> Path:
        def make(folder: Path) -> None:
            import torch
            from typer.testing import CliRunner

            from cl_ssl.cli import app

            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                args = ["bench", *flags, "--out", str(folder), "--run", "inline"]
                result = CliRunner().invoke(app, args)
            finally:
                torch.set_num_threads(threads)
            assert result.exit_code == 0, result.output

        key = hashlib.sha256("\0".join(flags).encode()).hexdigest()[:16]
        return made_once(f"inline-{key}", make) / "inline"

    return run


REPO = Path(__file__).resolve().parents[1]
CIFAR10_ROOT = Path(os.environ.get("CLSSL_CIFAR10", REPO.parent / "shared" / "data" / "cifar10"))
FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")


def require_path(path: Path, how_to_get: str) -> Path:
    """Skip when ``path`` is missing, except in CI (CI=true), where missing data is a failure."""
    if path.exists():
        return path
    message = f"{path} not found: {how_to_get}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run this test: {message}")
    pytest.skip(message)


@pytest.fixture
def cifar10_root() -> Path:
    return require_path(
        CIFAR10_ROOT / "train", "CIFAR-10 JPEGs live in ../shared/data/cifar10"
    ).parent


@pytest.fixture
def fashion_mnist_root() -> Path:
    return require_path(FASHION_MNIST_ROOT, "apt-get install -y dataset-fashion-mnist")


TINY_TRAIN = TrainConfig(epochs=1, batch_size=32, eval_batch_size=64, device="cpu", seed=0)


@pytest.fixture(scope="session")
def tiny_stream():
    """digits-periods at 8 px, 120 images per period (108 train, 12 test)."""
    from cl_ssl.registry import streams

    return streams.get("digits-periods")(StreamOptions(image_size=8, max_images=120))


@pytest.fixture
def make_template():
    """Factory: an SSLTemplate on 8 px inputs with the given plugins, seeded."""
    import dataclasses

    import torch
    from avalanche.evaluation.metrics import loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    from cl_ssl.augment import AugmentConfig, make_augment
    from cl_ssl.bench import build_model, make_optimizer
    from cl_ssl.template import SSLTemplate

    def make(stream, plugins=(), epochs=1, seed=0, batch_size=32, evaluator=None, **options):
        """``options`` go to SSLTemplate (``train_seed``, ``autocast_dtype``, ...)."""
        torch.manual_seed(seed)
        train = TrainConfig(batch_size=batch_size, lr=2e-3)
        model, method = build_model(train, 8)
        config = dataclasses.replace(AugmentConfig(input_size=8), **stream.augment_overrides)
        return SSLTemplate(
            model=model,
            optimizer=make_optimizer(train, model),
            method=method,
            augment=make_augment("batched", config),
            train_mb_size=batch_size,
            train_epochs=epochs,
            eval_mb_size=64,
            plugins=list(plugins),
            evaluator=evaluator or EvaluationPlugin(loss_metrics(experience=True), loggers=[]),
            **options,
        )

    return make


@pytest.fixture
def tiny_bench(tmp_path: Path):
    """A BenchConfig factory on digits-periods, 40 images per period at 8 px."""

    def make(strategies: str = "naive", **train_overrides) -> BenchConfig:
        fields = {**TINY_TRAIN.__dict__, **train_overrides}
        return BenchConfig(
            stream="digits-periods",
            strategies=strategies,
            train=TrainConfig(**fields),
            stream_options=StreamOptions(image_size=8, max_images=40),
            out=tmp_path / "runs",
            run_name="test",
            progress=False,
            overwrite=True,  # tests rerun into one folder on purpose
        )

    return make


def write_digit_images(folder: Path, per_class: int, classes=range(10)) -> dict[int, list[Path]]:
    """``folder/<class>/<n>.png`` from scikit-learn's digits (RGB, 8x8)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    files: dict[int, list[Path]] = {}
    for label in classes:
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        images = digits.images[digits.target == label][:per_class]
        for n, image in enumerate(images):
            path = folder / str(label) / f"{n}.png"
            pixels = (image * 255 / 16).astype(np.uint8)
            Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(path)
            files.setdefault(label, []).append(path)
    return files


@pytest.fixture
def digit_folder(tmp_path) -> Path:
    write_digit_images(tmp_path / "digits", per_class=30)
    return tmp_path / "digits"


def write_fake_cifar100(root: Path, per_split: dict[str, list[int]]):
    """``root/cifar-100-python/{meta,train,test}`` in torchvision's CIFAR-100 pickle format.

    Images are random uint8 rows of 3,072 bytes (channel-major 3x32x32), labels as given;
    ``meta`` names all 100 classes. Returns the names and the images of each split.
    """
    folder = root / "cifar-100-python"
    folder.mkdir()
    names = [f"class{i:02d}" for i in range(100)]
    with open(folder / "meta", "wb") as file:
        pickle.dump({"fine_label_names": names, "coarse_label_names": ["c"] * 20}, file)
    rng = np.random.default_rng(0)
    written = {}
    for split, labels in per_split.items():
        images = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
        entry = {
            "data": images.reshape(len(labels), -1),
            "fine_labels": list(labels),
            "coarse_labels": [label // 5 for label in labels],
        }
        with open(folder / split, "wb") as file:
            pickle.dump(entry, file)
        written[split] = images
    return names, written


@pytest.fixture
def write_cifar100():
    """:func:`write_fake_cifar100`, for tests: ``(root, {"train": [...], "test": [...]})``."""
    return write_fake_cifar100


class FullDisk:
    """Makes every write through :mod:`cl_ssl.atomic` fail as on a full disk, from ``fill()`` on.

    Like a real ``ENOSPC``: the first bytes land in the file, then ``write`` raises.
    ``fill_at`` fills the disk when a file of that name starts being written (the run goes on
    normally until then); ``free()`` gives the space back; ``failed`` names the files refused.
    """

    def __init__(self, fill_at: str | None = None) -> None:
        self.fill_at, self.full, self.failed = fill_at, False, []

    def fill(self) -> None:
        self.full = True

    def free(self) -> None:
        self.full, self.fill_at = False, None

    def open(self, path, mode="r", **options):
        file = open(path, mode, **options)  # noqa: SIM115  (closed by _FullFile)
        if self.fill_at is not None and Path(path).name == self.fill_at + ".partial":
            self.full = True
        if not self.full:
            return file
        self.failed.append(Path(path).name.removesuffix(".partial"))  # the target's name
        return _FullFile(file)


class _FullFile:
    def __init__(self, file) -> None:
        self.file = file

    def write(self, data):
        self.file.write(data[:16])  # some bytes land before the disk is full
        self.file.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def __iter__(self):
        return iter(self.file)


@pytest.fixture
def full_disk(monkeypatch):
    """A :class:`FullDisk`, installed in :mod:`cl_ssl.atomic` (not yet full)."""
    import cl_ssl.atomic

    disk = FullDisk()
    monkeypatch.setattr(cl_ssl.atomic, "open", disk.open, raising=False)
    return disk


class Forks:
    """``clssl`` runs forked from tests/fault_injection.py, each killed at a chosen moment."""

    def __init__(self, server: subprocess.Popen) -> None:
        self.server = server

    def run(self, event: str, nth: int, counts: Path, log: Path, *args: str) -> dict:
        """``clssl ARGS`` killed at the ``nth`` ``event`` (0: never): its signal and exit code."""
        self.server.stdin.write(json.dumps([event, nth, str(counts), str(log), list(args)]) + "\n")
        self.server.stdin.flush()
        return json.loads(self.server.stdout.readline())


@pytest.fixture(scope="module")
def forks():
    """The process that forks each killed run (imports paid once per test module)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    inject = Path(__file__).with_name("fault_injection.py")
    server = subprocess.Popen(
        [sys.executable, str(inject)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    yield Forks(server)
    server.stdin.close()
    server.wait(timeout=60)
