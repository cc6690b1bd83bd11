"""What ``clssl speed`` measures: one frozen :class:`SpeedConfig`, JSON round-trip for children.

Every row runs in its own process with the same config (serialised with :meth:`to_json`),
so the rows share model, data, batch size, thread count and timing protocol by
construction.

Example:
    >>> config = SpeedConfig(batch_size=16, image_size=16, windows=1, steps=2, rows=("naive",))
    >>> SpeedConfig.from_json(config.to_json()) == config
    True
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

LOOP_ROWS = ("loop-lightly", "loop-batched")
"""Hand-written SimCLR loops a user would write: the baselines of the ratios."""
PIPELINE_ROWS = ("data", "data-disk", "step")
"""The data pipeline alone (in memory, from image files) and the model step alone."""
STRATEGY_ROWS = ("naive", "lwf-ssl", "ewc", "replay", "cassle")
"""cl-ssl's own training, timed on experience 1 (any strategy spec, ``a+b`` too, is accepted)."""
DEFAULT_ROWS = LOOP_ROWS + PIPELINE_ROWS + STRATEGY_ROWS
DEFAULT_DATA_ROOT = Path("../shared/data/cifar10/train")

DataKind = Literal["auto", "cifar10", "synthetic"]
Storage = Literal["memory", "disk"]
Precision = Literal["auto", "fp32", "bf16"]


def default_workers() -> int:
    """DataLoader workers a user would pick here: one per core, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True)
class SpeedConfig:
    """One speed table. Defaults: the issue's CPU configuration, under 10 min on 2 idle cores.

    Timing protocol of every row: ``warmup`` steps, then ``windows`` windows of ``steps``
    steps each; a row's images/s is the median over windows of (images in the window /
    the window's seconds), loading of each step's batch included.

    Attributes:
        backbone: Backbone registry name (every row uses it).
        batch_size: Images per step (two views each).
        image_size: Side of the images and of the views.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        threads: torch intra-op threads in every row; None keeps torch's default.
        windows: Timing windows per row (the median is reported).
        steps: Steps per timing window.
        warmup: Untimed steps before the first window (at least 1).
        first_experience_steps: Steps the strategy rows train on experience 0 before
            experience 1 is timed (teachers, EWC importances, replay buffers exist then).
        rows: Rows to run, in order: names of :data:`DEFAULT_ROWS` or any strategy spec.
        data: ``cifar10`` (JPEGs under ``data_root``), ``synthetic`` (scikit-learn digits
            upscaled to RGB) or ``auto`` (CIFAR-10 when ``data_root`` exists).
        data_root: ImageFolder tree of CIFAR-10 training JPEGs.
        pool_size: Distinct images decoded (rows that need more cycle through them).
        storage: Where the training rows read images: ``memory`` (decoded uint8 tensor)
            or ``disk`` (image files decoded per item); ``data-disk`` always reads files.
        workers: DataLoader workers of every loader. None: the hand-written loops take one
            per core (at most 8) where they transform or decode per image
            (``loop-lightly``; ``loop-batched`` on disk), as a user would; cl-ssl's rows
            (``data``, ``data-disk``, strategies) take cl-ssl's default (``TrainConfig.
            workers``: none in memory, half the cores for files).
        precision: ``auto`` (cl-ssl's default: bf16 autocast on CUDA, fp32 on CPU),
            ``fp32`` or ``bf16``, for every row (``TrainConfig.precision``).
        channels_last: cl-ssl's ``TrainConfig.channels_last`` for ``step`` and the
            strategy rows (None: on for CUDA); the hand-written loops never use it.
        strategy_options: ``{"replay": {"mode": "double"}}``, as ``--opt`` gives them.
        seed: Seed of weights, data order and views.
    """

    backbone: str = "small_resnet"
    batch_size: int = 256
    image_size: int = 32
    device: str = "auto"
    threads: int | None = None
    windows: int = 5
    steps: int = 3
    warmup: int = 2
    first_experience_steps: int = 2
    rows: tuple[str, ...] = DEFAULT_ROWS
    data: DataKind = "auto"
    data_root: Path = DEFAULT_DATA_ROOT
    pool_size: int = 4096
    storage: Storage = "memory"
    workers: int | None = None
    precision: Precision = "auto"
    channels_last: bool | None = None
    strategy_options: dict[str, dict[str, str]] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))
        object.__setattr__(self, "data_root", Path(self.data_root))
        for name in ("batch_size", "image_size", "windows", "steps", "warmup", "pool_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.batch_size < 2:
            raise ValueError("--batch-size must be at least 2: NT-Xent needs other images")
        if self.first_experience_steps < 1:
            raise ValueError("--first-experience-steps must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise ValueError("--threads must be at least 1 (or left out for torch's default)")
        if self.workers is not None and self.workers < 0:
            raise ValueError("--workers must be >= 0")
        _choice("data", self.data, ("auto", "cifar10", "synthetic"))
        _choice("storage", self.storage, ("memory", "disk"))
        _choice("precision", self.precision, ("auto", "fp32", "bf16"))
        _choice("device", self.device, ("auto", "cpu", "cuda"))
        if not self.rows:
            raise ValueError(f"no rows to run: pass --rows from {', '.join(DEFAULT_ROWS)}")
        if len(set(self.rows)) != len(self.rows):
            raise ValueError(f"--rows repeats a row: {', '.join(self.rows)}")

    def loop_workers(self, per_image: bool) -> int:
        """Workers of a hand-written loop's loader: :attr:`workers`, or what a user picks.

        A user gives a loader that decodes or transforms per image one worker per core,
        and a loader over an in-memory uint8 tensor none.
        """
        if self.workers is not None:
            return self.workers
        return default_workers() if per_image else 0

    def cl_ssl_workers(self, storage: Storage) -> int:
        """Workers of cl-ssl's loader on ``storage``: :attr:`workers`, or cl-ssl's default.

        The default mirrors ``cl_ssl.strategy_run.loader_options`` (none in memory, half
        the cores, at most 8, for files) without importing Avalanche.
        """
        if self.workers is not None:
            return self.workers
        return min(8, max(1, (os.cpu_count() or 2) // 2)) if storage == "disk" else 0

    @property
    def timed_steps(self) -> int:
        """Steps a timed row runs: warm-up plus every window."""
        return self.warmup + self.windows * self.steps

    def strategy_rows(self) -> tuple[str, ...]:
        """The rows that are strategy specs (everything not a loop or pipeline row)."""
        return tuple(r for r in self.rows if r not in LOOP_ROWS + PIPELINE_ROWS)

    def to_json(self) -> str:
        """The config as one JSON string (what a row's child process receives)."""
        values = asdict(self)
        values["data_root"] = str(self.data_root)
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> SpeedConfig:
        """Undo :meth:`to_json`; unknown keys are an error naming them."""
        values = json.loads(text)
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown speed config key(s) {sorted(unknown)}")
        values["rows"] = tuple(values.get("rows", DEFAULT_ROWS))
        return cls(**values)


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown --{name} '{value}'; choose from: {', '.join(choices)}")
