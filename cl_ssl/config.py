"""The run's settings: one frozen dataclass per concept; CLI flags map onto the fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# Imports stay light (no torch, Avalanche): the CLI imports this module for every command,
# `clssl --help` included.
from cl_ssl.schedule import LRSchedule, ScheduleKind

AugmentKind = Literal["batched", "lightly"]  # cl_ssl.augment's implementations


@dataclass(frozen=True)
class StreamOptions:
    """Everything a stream may be configured with; each stream reads the fields it needs.

    Attributes:
        data_root: Root of the dataset on disk (ImageFolder layout for ``cifar10-split``).
        split_seed: Seed of every random choice a stream makes (caps, splits, class order).
            Fixed by default and independent of the training seed, so a spread over
            ``--seeds`` measures training variance on identical data.
        image_size: Side of the square training input; None keeps the stream's default.
        max_images: Cap on images per experience (before the test split), for quick runs.
        test_fraction: Share of an experience held out for testing when it has no test set.
        val_fraction: Share of each experience's training images held out as a validation
            split; when > 0 every evaluation runs on the validation splits and the test
            splits are never touched (tune defaults this way, never on test data).
        manifest: Frame manifest CSV (``twitch-periods``).
        periods: Explicit periods ``START/END[,START/END...]`` (``twitch-periods``).
        period_length: Period length such as ``6M`` when ``periods`` is not given.
        max_bad_fraction: Share of unreadable images tolerated per period before aborting.
        datasets: Comma-separated dataset names or folders, one experience each (``pair``).
        dataset: Dataset name or folder to split by class (``split``).
        tasks: Number of class-incremental tasks (``split``).
        extra: Options of third-party streams (``key=value`` from ``--stream-opt``).
    """

    data_root: Path | None = None
    split_seed: int = 0
    image_size: int | None = None
    max_images: int | None = None
    test_fraction: float = 0.1
    val_fraction: float = 0.0
    manifest: Path | None = None
    periods: str | None = None
    period_length: str | None = None
    max_bad_fraction: float = 0.05
    datasets: str | None = None
    dataset: str | None = None
    tasks: int = 5
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ValueError(f"--max-bad-fraction must be in [0, 1], got {self.max_bad_fraction}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class TrainConfig:
    """How every strategy of a bench trains (identical across strategies by design).

    Attributes:
        epochs: Epochs per experience.
        batch_size: Training images per step (two views each).
        eval_batch_size: Images per evaluation step; NT-Xent depends on it.
        lr: Base learning rate (every parameter group's, before the schedule).
        optimizer: ``adam`` (default: robust for short CPU runs), ``sgd`` or ``lars``
            (the SSL papers' choice for large batches, as solo-learn and CaSSLe run it:
            trust coefficient 0.02, rate clipped at ``lr``, :mod:`cl_ssl.lars`).
        momentum: Momentum of ``sgd`` and ``lars``.
        weight_decay: Weight decay; never applied to BatchNorm and bias parameters (Lightly's
            ``get_weight_decay_parameters``; predictors that strategies add included), which
            LARS also leaves unadapted. LARS adapts the other weights at 0 too (not SGD).
        schedule: ``constant`` or ``cosine`` (linear warmup, then cosine decay to 0),
            restarted every experience and stepped per iteration (``cl_ssl.schedule``).
        warmup_epochs: Warmup length of ``cosine``, in epochs of the experience.
        backbone: Backbone registry name.
        method: SSL method registry name.
        method_options: Options of the method, ``{"simclr": {"temperature": "0.2"}}``
            (``--method-opt simclr.temperature=0.2``); only ``method``'s may be given.
        augment: ``batched`` (Kornia, on device) or ``lightly`` (per image, reference).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        workers: DataLoader worker processes decoding images. None: none for in-memory
            data (workers would only compete with torch's threads), half the CPU cores
            (at most 8) for disk-backed data, where they decode the next batches while the
            model trains.
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``fp32``, or ``bf16``
            (autocast of forward and loss to bfloat16; also on CPU). Optimizer steps and
            weights stay fp32.
        channels_last: Model and inputs in the channels-last memory format. None (auto): on,
            on CUDA and CPU alike (a small-ResNet step measured ~2x faster on the CPU).
        compile: ``torch.compile`` the backbone (in place: checkpoints keep the plain keys).
        sync_bn: Under torchrun, BatchNorm statistics over the global batch (torch's
            ``SyncBatchNorm``, CUDA only); otherwise each rank normalises its own rows.
        online: One pass over each experience in arrival order (no shuffling, one epoch):
            streaming frames (:mod:`cl_ssl.online`).
        updates_per_batch: Gradient updates on each incoming batch (online mode), each with
            fresh views (and fresh replayed rows).
        seed: Seed of model init, data order and augmentation; same for every strategy.
            ``batch_size`` is the global batch under torchrun (B / N images per rank).
    """

    epochs: int = 1
    batch_size: int = 256
    eval_batch_size: int = 256
    lr: float = 1e-3
    optimizer: Literal["adam", "sgd", "lars"] = "adam"
    momentum: float = 0.9
    weight_decay: float = 1e-6
    schedule: ScheduleKind = "constant"
    warmup_epochs: float = 0.0
    backbone: str = "small_resnet"
    method: str = "simclr"
    method_options: dict[str, dict[str, str]] = field(default_factory=dict)
    augment: AugmentKind = "batched"
    device: str = "auto"
    workers: int | None = None
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    channels_last: bool | None = None
    compile: bool = False
    sync_bn: bool = False
    online: bool = False
    updates_per_batch: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.batch_size < 2:
            # One image has no other image to contrast with (NT-Xent is exactly 0): nothing
            # would be learnt while the run looks healthy.
            raise ValueError("--batch-size must be at least 2: an SSL step needs other images")
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"--workers must be >= 0, got {self.workers}")
        if self.lr <= 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"unknown precision '{self.precision}'; choose from: auto, fp32, bf16")
        if self.channels_last is not None and not isinstance(self.channels_last, bool):
            raise ValueError(f"--channels-last must be on, off or auto, got {self.channels_last!r}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"--compile must be on or off, got {self.compile!r}")
        if self.updates_per_batch < 1:
            raise ValueError(
                f"--updates-per-batch must be at least 1, got {self.updates_per_batch}"
            )
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
        if self.optimizer not in ("adam", "sgd", "lars"):
            raise ValueError(f"unknown optimizer '{self.optimizer}'; choose from: adam, sgd, lars")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"--momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        LRSchedule(self.schedule, self.warmup_epochs)  # validates both
        other = sorted(set(self.method_options) - set(self.method.split("+")))
        if other:
            raise ValueError(
                f"--method-opt {other[0]}.* given but the method is '{self.method}': "
                "drop the option or pass --method " + other[0]
            )

    @property
    def lr_schedule(self) -> LRSchedule:
        """The per-experience learning-rate schedule."""
        return LRSchedule(self.schedule, self.warmup_epochs)


@dataclass(frozen=True)
class EvalConfig:
    """What is measured after every experience, on every experience's test set.

    Attributes:
        protocols: ``all`` (bank and probe over the training images of every experience,
            scored on every test split and their union: the protocol papers report) and/or
            ``experience`` (each experience's own classes only).
        knn_k: Neighbour counts of the weighted kNN accuracy.
        knn_temperature: Temperature of the kNN vote weights exp(sim / T).
        linear_probe: Fit a logistic-regression probe on the training split's features.
        kmeans: k-means NMI and ARI on the test split's features.
        max_train_images: Cap on training images per experience used as the kNN memory bank
            and the probe's training set (a seeded random subset); None keeps all.
        checkpoints: Save the model after every experience (``checkpoints/exp<k>.pt``).
        seed: Seed of the subset and of k-means (the split seed: the same for every
            training seed, so seeds measure training variance only).
    """

    protocols: tuple[str, ...] = ("all", "experience")
    knn_k: tuple[int, ...] = (20, 200)
    knn_temperature: float = 0.07
    linear_probe: bool = True
    kmeans: bool = True
    max_train_images: int | None = 10_000
    checkpoints: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if any(k < 1 for k in self.knn_k):
            raise ValueError(f"--knn-k values must be at least 1, got {self.knn_k}")
        unknown = set(self.protocols) - {"all", "experience"}
        if unknown or not self.protocols:
            raise ValueError(
                f"unknown evaluation protocol(s) {sorted(unknown)}; choose from: all, experience"
            )
        if self.max_train_images is not None and self.max_train_images < 1:
            raise ValueError("--eval-max-train must be at least 1")


@dataclass(frozen=True)
class BenchConfig:
    """One comparison: strategies run one after another on one stream, for each seed.

    Attributes:
        stream: Stream registry name.
        strategies: Strategy spec, e.g. ``"naive,lwf-ssl+replay"``.
        train: Training settings shared by every strategy (``train.seed`` is replaced by
            each of ``seeds`` in turn).
        evaluation: What is measured after every experience.
        stream_options: How the stream is built.
        strategy_options: Per-strategy options, ``{"lwf-ssl": {"lambda": "1"}}``.
        out: Parent folder of run directories.
        run_name: Name of this run's directory (default: stream and time).
        progress: Show progress bars.
        training_seeds: Seeds of model init, data order and views (``--seeds 0,1,2``);
            empty means ``(train.seed,)``.
        overwrite: Replace a run directory that already holds results (else refuse).
    """

    stream: str
    strategies: str
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    stream_options: StreamOptions = field(default_factory=StreamOptions)
    strategy_options: dict[str, dict[str, str]] = field(default_factory=dict)
    out: Path = Path("runs")
    run_name: str | None = None
    progress: bool = True
    training_seeds: tuple[int, ...] = ()
    overwrite: bool = False

    def __post_init__(self) -> None:
        if len(set(self.training_seeds)) != len(self.training_seeds):
            raise ValueError(f"--seeds repeats a seed: {list(self.training_seeds)}")

    @property
    def seeds(self) -> tuple[int, ...]:
        """The training seeds to run, in order."""
        return self.training_seeds or (self.train.seed,)
