"""The commands' settings: one frozen dataclass per concept, each field declared once.

A field's ``setting(default, help=..., check=...)`` (:mod:`cl_ssl.flags`) is its flag, its
``--help`` line, its key in experiment files and its row in ``docs/cli.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# Imports stay light (no torch, Avalanche): the CLI imports this module for every command,
# `clssl --help` included.
from cl_ssl.flags import (
    at_least,
    check_fields,
    fraction,
    non_negative,
    parse_ints,
    parse_option_flags,
    parse_pairs,
    parse_words,
    positive,
    setting,
    switch,
)
from cl_ssl.interim import check_every
from cl_ssl.schedule import LRSchedule, ScheduleKind

AugmentKind = Literal["batched", "lightly"]  # cl_ssl.augment's implementations
ProbeBackend = Literal["auto", "sklearn", "torch"]  # cl_ssl.evaluation.linear_probe's solvers


@dataclass(frozen=True)
class StreamOptions:
    """Everything a stream may be configured with; each stream reads the fields it needs.

    Each field's meaning is its ``setting(help=...)`` (:mod:`cl_ssl.flags`): the one
    declaration that ``--help``, experiment files and ``docs/cli.md`` show.
    """

    data_root: Path | None = setting(
        None, help="Dataset root on disk (ImageFolder layout for cifar10-split)."
    )
    split_seed: int = setting(
        0,
        help="Seed of data caps, splits and class order: fixed across --seeds, so a spread "
        "over seeds measures training variance on identical data.",
    )
    image_size: int | None = setting(
        None, help="Side of the square training input in pixels (default: the stream's)."
    )
    max_images: int | None = setting(
        None, help="Cap on training images per experience (before the test split)."
    )
    max_test_images: int | None = setting(
        None,
        help="Cap on test images per experience of a stream with its own test set (default: "
        "--max-images / 9; 0: every test image). More test images narrow the intervals of "
        "final accuracies without changing training.",
        check=non_negative,
    )
    test_fraction: float = setting(
        0.1,
        help="Share of an experience held out for testing when it has no test set.",
        check=fraction(),
    )
    val_fraction: float = setting(
        0.0,
        help="Hold out this share of each experience's training images and evaluate on it "
        "instead of the test splits, which are then never touched (for tuning).",
        check=fraction(),
    )
    manifest: Path | None = setting(None, help="Frame manifest CSV (twitch-periods).")
    periods: str | None = setting(None, help="START/END[,START/END...] periods (twitch-periods).")
    period_length: str | None = setting(
        None, help="Period length, e.g. 6M, 2W, when --periods is not given (twitch-periods)."
    )
    max_bad_fraction: float = setting(
        0.05,
        help="Share of unreadable images tolerated per period before aborting.",
        check=fraction(closed=True),
    )
    datasets: str | None = setting(
        None, help="A[=ROOT],B[=ROOT]: datasets in sequence, one experience each (pair)."
    )
    dataset: str | None = setting(None, help="Dataset name or folder to split by class (split).")
    tasks: int = setting(5, help="Number of class-incremental tasks (split).")
    extra: dict[str, str] = setting(
        help="Option of a third-party stream KEY=VALUE (repeatable).",
        flags="--stream-opt",
        parse=parse_pairs,
        default_factory=dict,
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class TrainConfig:
    """How every strategy of a bench trains (identical across strategies by design).

    Each field's meaning is its ``setting(help=...)``. ``batch_size`` is the global batch
    under torchrun (B / N images per rank).
    """

    epochs: int = setting(1, help="Epochs per experience.", check=at_least(1))
    batch_size: int = setting(
        256,
        help="Training images per step (two views each).",
        check=at_least(2, ": an SSL step needs other images"),
    )
    eval_batch_size: int = setting(
        256, help="Images per evaluation step; NT-Xent depends on it.", check=at_least(1)
    )
    lr: float = setting(
        1e-3,
        help="Base learning rate (every parameter group's, before the schedule).",
        check=positive,
    )
    optimizer: Literal["adam", "sgd", "lars"] = setting(
        "adam",
        help="adam (robust for short CPU runs), sgd or lars (the SSL papers' choice for large "
        "batches, as solo-learn and CaSSLe run it: trust 0.02, rate clipped at --lr).",
    )
    momentum: float = setting(0.9, help="Momentum of sgd and lars.", check=fraction())
    weight_decay: float = setting(
        1e-6,
        help="Weight decay, never on BatchNorm and bias parameters (Lightly's "
        "get_weight_decay_parameters), which LARS also leaves unadapted.",
        check=non_negative,
    )
    schedule: ScheduleKind = setting(
        "constant",
        help="constant, or cosine: linear warmup then cosine decay to 0, restarted every "
        "experience and stepped per iteration.",
    )
    warmup_epochs: float = setting(
        0.0, help="Warmup of the cosine schedule, in epochs of the experience."
    )
    backbone: str = setting("small_resnet", help="Backbone registry name (see `clssl list`).")
    method: str = setting(
        "simclr",
        help="SSL method registry name; A+B mixes the methods' losses; A,B (bench): every "
        "strategy and seed runs with each.",
    )
    method_options: dict[str, dict[str, str]] = setting(
        help="Method option METHOD.KEY=VALUE, e.g. simclr.temperature=0.2 (repeatable; "
        "only --method's).",
        flags="--method-opt",
        parse=lambda flags: parse_option_flags(flags, "method"),
        default_factory=dict,
    )
    augment: AugmentKind = setting(
        "batched", help="batched (Kornia, on device) or lightly (per image, the reference)."
    )
    device: str = setting("auto", help="auto (CUDA when available), cpu or cuda.")
    workers: int | None = setting(
        None,
        help="DataLoader processes decoding images (default: 0 for in-memory data, half the "
        "cores, at most 8, for image files).",
        check=non_negative,
    )
    precision: Literal["auto", "fp32", "bf16"] = setting(
        "auto",
        help="auto (bf16 autocast on CUDA, fp32 on CPU), fp32 or bf16 (autocast of forward "
        "and loss; optimizer steps and weights stay fp32).",
    )
    channels_last: bool | None = setting(
        None,
        help="Model and views in channels-last memory format (default: on; a small-ResNet "
        "step measured ~2x faster on the CPU).",
        check=switch,
    )
    compile: bool = setting(
        False,
        help="torch.compile the backbone (opt-in; slow first steps; checkpoints keep the "
        "plain keys).",
        check=lambda v: None if isinstance(v, bool) else f"must be on or off, got {v!r}",
    )
    sync_bn: bool = setting(
        False, help="Under torchrun: BatchNorm over the global batch (CUDA only)."
    )
    online: bool = setting(
        False, help="One pass over each experience in arrival order (streaming frames)."
    )
    updates_per_batch: int = setting(
        1,
        help="Gradient updates per incoming batch, each with fresh views (with --online).",
        check=at_least(1),
    )
    data_on_device: Literal["auto", "on", "off"] = setting(
        "auto",
        help="Hold each experience's in-memory training images on the device and index "
        "batches there, in the loader's order (no DataLoader, no copy per step): auto (on "
        "CUDA), on or off (the DataLoader).",
    )
    device_data_max_mb: int = setting(
        4096,
        help="Largest experience (its images, in MB) --data-on-device holds on the device.",
        check=positive,
    )
    seed: int = setting(
        0, help="Seed of model init, data order and views; the same for every strategy."
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.updates_per_batch > 1 and not self.online:
            raise ValueError("--updates-per-batch repeats incoming batches: add --online")
        if self.online and self.epochs != 1:
            raise ValueError(
                f"--online is one pass over each experience, got --epochs {self.epochs}: "
                "drop --epochs (use --updates-per-batch for more updates)"
            )
        if self.sync_bn and self.device == "cpu":
            raise ValueError(
                "--sync-bn needs CUDA (torch's SyncBatchNorm has no CPU kernel): drop it or "
                "train on GPUs"
            )
        LRSchedule(self.schedule, self.warmup_epochs)  # validates both
        # A bench grid names several methods (simclr,byol); each option is its method's own.
        named = {part for m in self.method.split(",") for part in m.strip().split("+")}
        other = sorted(set(self.method_options) - named)
        if other:
            raise ValueError(
                f"--method-opt {other[0]}.* given but the method is '{self.method}': "
                "drop the option or pass --method " + other[0]
            )

    @property
    def lr_schedule(self) -> LRSchedule:
        """The per-experience learning-rate schedule."""
        return LRSchedule(self.schedule, self.warmup_epochs)


PROTOCOLS = ("all", "experience")


@dataclass(frozen=True)
class EvalConfig:
    """What is measured after every experience, on every experience's test set.

    Each field's meaning is its ``setting(help=...)``.
    """

    protocols: tuple[str, ...] = setting(
        PROTOCOLS,
        help="all (bank and probe over every experience's training images, scored on every "
        "test split and their union: the papers' protocol) and/or experience (each "
        "experience's own classes only), comma-separated.",
        flags="--eval-protocols",
        parse=parse_words,
        cli_type=str,
        check=lambda v: (
            None
            if v and set(v) <= set(PROTOCOLS)
            else f"has unknown protocol(s) {sorted(set(v) - set(PROTOCOLS))}; choose from: "
            + ", ".join(PROTOCOLS)
        ),
    )
    knn_k: tuple[int, ...] = setting(
        (20, 200),
        help="Neighbour counts of the weighted kNN accuracy, comma-separated.",
        parse=lambda text: parse_ints(text, "--knn-k"),
        cli_type=str,
        check=lambda v: None if all(k >= 1 for k in v) else f"values must be at least 1, got {v}",
    )
    knn_temperature: float = setting(
        0.07, help="Temperature T of the kNN vote weights exp(sim / T).", check=positive
    )
    linear_probe: bool = setting(
        True, help="Linear-probe accuracy (logistic regression on the training features)."
    )
    probe_backend: ProbeBackend = setting(
        "auto",
        help="Linear-probe solver: sklearn (scikit-learn, float64, CPU; the published "
        "figures'), torch (the same problem, float32, on the model's device, where the "
        "features and kNN then stay) or auto (torch on CUDA, sklearn on the CPU).",
    )
    kmeans: bool = setting(True, help="k-means NMI and ARI on the test split's features.")
    max_train_images: int | None = setting(
        10_000,
        help="Cap on kNN-bank/probe training images per experience (a seeded random subset).",
        flags="--eval-max-train",
        check=at_least(1),
    )
    checkpoints: bool = setting(
        True, help="Save the model after each experience (checkpoints/exp<k>.pt)."
    )
    checkpoint_every: str | None = setting(
        None,
        help="Also save the full training state inside each experience, every N epochs (2) "
        "or N steps (200steps), as checkpoints/within.pt (the newest only; removed once "
        "exp<k>.pt is written): --resume and torchrun restarts go on from it.",
        check=check_every,
    )
    seed: int = setting(
        0,
        help="Seed of the subset and of k-means: the split seed (--split-seed), the same for "
        "every training seed.",
        flag=False,
        same_as="stream_options.split_seed",
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.checkpoint_every is not None and not self.checkpoints:
            raise ValueError(
                "--checkpoint-every goes on from the experience's start checkpoint: drop "
                "--no-checkpoints"
            )


@dataclass(frozen=True)
class BenchConfig:
    """One comparison: strategies run one after another on one stream, for each seed.

    ``train.seed`` is replaced by each of :attr:`seeds` in turn. Each field's meaning is its
    ``setting(help=...)``.
    """

    stream: str = setting(
        help="Stream name (see `clssl list`); required unless --resume.", cli_type=str | None
    )
    strategies: str = setting(
        "naive", help="Strategies: A[,B...]; A+B composes plugins in one run.", flags="--strategy"
    )
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    stream_options: StreamOptions = field(default_factory=StreamOptions)
    strategy_options: dict[str, dict[str, str]] = setting(
        help="Strategy option STRATEGY.KEY=VALUE, e.g. lwf-ssl.lambda=1 (repeatable).",
        flags="--opt",
        parse=parse_option_flags,
        default_factory=dict,
    )
    out: Path = setting(Path("runs"), help="Parent folder of run directories.")
    run_name: str | None = setting(
        None,
        help="Run directory name (default: stream and time; --run-name under torchrun, whose "
        "own parser takes --run for its --run-path).",
        flags=("--run", "--run-name"),
    )
    progress: bool = setting(True, help="Show progress bars.")
    training_seeds: tuple[int, ...] = setting(
        (),
        help="Training seeds, e.g. 0,1,2: every strategy runs for each (overrides --seed).",
        flags="--seeds",
        parse=lambda text: parse_ints(text, "--seeds"),
        cli_type=str | None,
    )
    overwrite: bool = setting(
        False, help="Replace a --run directory that already holds results (else refuse)."
    )
    launcher: Literal["inline", "local", "ray"] = setting(
        "inline",
        help="inline (every run in this process, one after another), local (each "
        "(method, strategy, seed) run in its own process, --jobs at a time, one GPU each "
        "when GPUs are visible) or ray (each run a Ray task on a cluster: --address).",
    )
    jobs: int = setting(1, help="Runs at once with --launcher local.", check=at_least(1))
    threads_per_job: int | None = setting(
        None,
        help="Torch CPU threads of each --launcher local run (default: the cores / --jobs).",
        check=at_least(1),
    )
    address: str | None = setting(
        None,
        help="Ray cluster of --launcher ray: its head's HOST:PORT, or auto (RAY_ADDRESS, else "
        "the cluster `ray start` started on this machine); default: a Ray instance of this "
        "machine's cores, started for this bench.",
    )
    gpus_per_run: float | None = setting(
        None,
        help="GPUs of each --launcher ray run, e.g. 0.25: four runs share a GPU (default: 1 "
        "when the cluster has GPUs and --device is not cpu, else 0).",
        check=lambda v: None if v is None or 0 <= v <= 1 else f"must be in [0, 1], got {v}",
    )
    cpus_per_run: int | None = setting(
        None,
        help="CPUs (and torch threads) of each --launcher ray run (default: 1).",
        check=at_least(1),
    )
    max_retries: int | None = setting(
        None,
        help="Times Ray reruns a --launcher ray run whose worker died (killed, a node lost), "
        "from its last checkpoint; a run that fails is recorded, not rerun (default: 3).",
        check=at_least(0),
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if len(set(self.training_seeds)) != len(self.training_seeds):
            raise ValueError(f"--seeds repeats a seed: {list(self.training_seeds)}")
        if self.jobs > 1 and self.launcher == "inline":
            raise ValueError(
                f"--jobs {self.jobs} runs processes side by side: add --launcher local"
            )
        check_launcher_flags(self)
        methods = self.methods
        if len(set(methods)) != len(methods):
            raise ValueError(f"--method repeats a method: {list(methods)}")

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods of the grid, in order (``--method simclr,byol``)."""
        return tuple(m.strip() for m in self.train.method.split(",") if m.strip())

    @property
    def seeds(self) -> tuple[int, ...]:
        """The training seeds to run, in order."""
        return self.training_seeds or (self.train.seed,)


RAY_FLAGS = ("address", "gpus_per_run", "cpus_per_run", "max_retries")
""":class:`BenchConfig` fields of ``--launcher ray`` alone (None: not given)."""


def check_launcher_flags(config: BenchConfig) -> None:
    """Each launcher's flags only with that launcher: a flag that would do nothing is refused."""
    if config.launcher != "ray":
        for name in RAY_FLAGS:
            if getattr(config, name) is not None:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} sets how Ray runs the runs: add --launcher ray")
    elif config.jobs > 1 or config.threads_per_job is not None:
        raise ValueError(
            "--jobs and --threads-per-job are --launcher local's: with --launcher ray the "
            "cluster runs as many runs at once as its CPUs and GPUs hold (--cpus-per-run, "
            "--gpus-per-run)"
        )


@dataclass(frozen=True)
class ContinueConfig:
    """What ``clssl continue`` trains; each field's ``setting`` is its flag.

    The stream options come from :class:`StreamOptions`' flags: each given one replaces the
    checkpoint's (with another ``stream``, the default).
    """

    checkpoint: Path = setting(
        help="checkpoints/exp<k>.pt written by bench or continue (a training state).",
        flags="--from",
    )
    stream: str | None = setting(None, help="Stream name (default: the checkpoint's).")
    stream_options: dict[str, Any] = setting(
        help="The given stream flags, by field name.", flag=False, default_factory=dict
    )
    experiences: tuple[int, ...] = setting(
        (),
        help="Experiences to train, e.g. 2,3 (default: every one after the checkpoint's).",
        parse=lambda text: parse_ints(text, "--experiences"),
        cli_type=str | None,
    )
    out: Path | None = setting(
        None, help="Run directory to write (default: the checkpoint's own, beside it)."
    )
    device: str | None = setting(None, help="auto, cpu or cuda (default: as trained).")
    progress: bool = setting(True, help="Show progress bars.")


@dataclass(frozen=True)
class DriftConfig:
    """A drift simulation (``clssl drift``); each field's ``setting`` is its flag."""

    source: Path = setting(help="Labeled ImageFolder (<class>/*.jpg).", argument=True)
    out: Path = setting(help="Manifest CSV to write (paths in it are relative to its folder).")
    periods: int = setting(4, help="Number of time periods.")
    categories_per_period: int | None = setting(
        None, help="Categories shown in each period (default: half of them)."
    )
    carry_over: float = setting(
        0.9, help="Share of a period's categories kept in the next one (0 to 1)."
    )
    frames_per_category: int = setting(100, help="Images of each shown category per period.")
    frames_per_vod: int = setting(25, help="Frames grouped under one synthetic VOD.")
    start: str = setting("2020-01-01", help="First period's start (ISO date).")
    period_length: str = setting("6M", help="Length of each period (6M, 2W, ...).")
    seed: int = setting(0, help="Seed of every choice.")

    def __post_init__(self) -> None:
        if not 0.0 <= self.carry_over <= 1.0:
            raise ValueError(f"--carry-over must be between 0 and 1, got {self.carry_over}")
        if self.periods < 1 or self.frames_per_category < 1 or self.frames_per_vod < 1:
            raise ValueError("--periods, --frames-per-category and --frames-per-vod must be >= 1")


@dataclass(frozen=True)
class IngestConfig:
    """Where the VOD list is, where frames go, how they are sampled and stored.

    ``clssl ingest``'s flags: each field's ``setting``; the CSV's columns: :mod:`cl_ssl.ingest`.
    """

    vods_csv: Path = setting(
        help="CSV: vod_id, created_at, source[, category, start, end].", argument=True
    )
    out: Path = setting(help="Output folder: frames under frames/<vod_id>/, and manifest.csv.")
    fps: float = setting(1.0, help="Frames kept per second of video time.")
    size: int | None = setting(
        None,
        help="Side of the square frames written (centre crop, then resize; default: the "
        "video's frame size).",
    )
    jpeg_quality: int = setting(90, help="PIL JPEG quality, 1-100.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "vods_csv", Path(self.vods_csv))
        object.__setattr__(self, "out", Path(self.out))
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        if self.size is not None and self.size < 1:
            raise ValueError(f"size must be a positive number of pixels or None, got {self.size}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")

    @property
    def manifest(self) -> Path:
        """``out/manifest.csv``."""
        return self.out / "manifest.csv"

    @property
    def frames_dir(self) -> Path:
        """``out/frames``: one folder per VOD."""
        return self.out / "frames"


STREAM_DATA = "stream"
"""``--data`` value that takes the labeled images from the checkpoint's own stream."""


@dataclass(frozen=True)
class FinetuneConfig:
    """A downstream finetune (``clssl finetune``); each field's ``setting`` is its flag."""

    checkpoint: Path = setting(help="checkpoints/exp<k>.pt from clssl bench.")
    data: str = setting(
        STREAM_DATA,
        help="'stream': the checkpoint's stream's test splits (never trained on); or a "
        "dataset name or ImageFolder path, minus the images the stream trained on.",
    )
    data_root: Path | None = setting(
        None, help="Root for registry datasets that read from disk (e.g. cifar10)."
    )
    train_per_class: int | None = setting(100, help="Labeled training images per class.")
    test_fraction: float = setting(
        0.2,
        help="Held-out share when the data has no test split (with 'stream': the least "
        "share of every class kept for testing).",
    )
    hidden_dim: int = setting(256, help="MLP head hidden width.")
    epochs: int = setting(100, help="Head training epochs (passes over the labeled features).")
    batch_size: int = setting(256, help="Feature batch size of the head's training.")
    lr: float = setting(1e-3, help="Adam learning rate of the head.")
    seed: int = setting(0, help="Seed of the subset, the split and the head's initialisation.")
    device: str = setting("auto", help="Where the encoder runs: auto, cpu or cuda.")
    leak_check: bool = setting(
        True,
        help="Drop the images the stream trained on from --data (needs the run's "
        "configuration: its config.json, or the copy a bench checkpoint holds); "
        "--no-leak-check finetunes on a checkpoint without one.",
    )
