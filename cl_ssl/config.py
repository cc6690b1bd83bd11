"""The run's settings: one frozen dataclass per concept; CLI flags map onto the fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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
from cl_ssl.schedule import LRSchedule, ScheduleKind

AugmentKind = Literal["batched", "lightly"]  # cl_ssl.augment's implementations


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
    method: str = setting("simclr", help="SSL method registry name; A+B mixes the methods' losses.")
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
    seed: int = setting(
        0,
        help="Seed of the subset and of k-means: the split seed (--split-seed), the same for "
        "every training seed.",
        flag=False,
        same_as="stream_options.split_seed",
    )

    def __post_init__(self) -> None:
        check_fields(self)


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

    def __post_init__(self) -> None:
        if len(set(self.training_seeds)) != len(self.training_seeds):
            raise ValueError(f"--seeds repeats a seed: {list(self.training_seeds)}")

    @property
    def seeds(self) -> tuple[int, ...]:
        """The training seeds to run, in order."""
        return self.training_seeds or (self.train.seed,)
