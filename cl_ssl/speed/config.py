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
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

from cl_ssl.flags import (
    at_least,
    check_fields,
    non_negative,
    parse_option_flags,
    parse_words,
    setting,
    switch,
)

LOOP_ROWS = ("loop-lightly", "loop-batched")
"""Hand-written SimCLR loops a user would write: the baselines of the ratios."""
PIPELINE_ROWS = ("data", "data-device", "data-disk", "step")
"""The data pipeline alone (in memory, from image files) and the model step alone."""
STRATEGY_ROWS = ("naive", "lwf-ssl", "ewc", "replay", "cassle")
"""cl-ssl's own training, timed on experience 1 (any strategy spec, ``a+b`` too, is accepted)."""
DEFAULT_ROWS = LOOP_ROWS + PIPELINE_ROWS + STRATEGY_ROWS
DATA_SUFFIXES = {"@device": "on", "@loader": "off"}
"""A strategy row's suffix: its batches indexed on the device, or from the DataLoader."""
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

    Each field's meaning is its ``setting(help=...)``, the one declaration of its flag.
    """

    backbone: str = setting("small_resnet", help="Backbone registry name (every row uses it).")
    batch_size: int = setting(
        256,
        help="Images per step (two views each).",
        check=at_least(2, ": NT-Xent needs other images"),
    )
    image_size: int = setting(32, help="Side of the images and of the views.", check=at_least(1))
    device: Literal["auto", "cpu", "cuda"] = setting(
        "auto", help="auto (CUDA when available), cpu or cuda."
    )
    threads: int | None = setting(
        None, help="torch intra-op threads in every row (default: torch's).", check=at_least(1)
    )
    windows: int = setting(
        5, help="Timing windows per row (the median is reported).", check=at_least(1)
    )
    steps: int = setting(3, help="Steps per timing window.", check=at_least(1))
    warmup: int = setting(2, help="Untimed steps before the first window.", check=at_least(1))
    first_experience_steps: int = setting(
        2,
        help="Steps the strategy rows train on experience 0 before experience 1 is timed "
        "(teachers, EWC importances, replay buffers exist then).",
        check=at_least(1),
    )
    rows: tuple[str, ...] = setting(
        DEFAULT_ROWS,
        help="Rows to run, in order, comma-separated: loops, pipeline rows or any strategy spec "
        "(naive@device, naive@loader: its data on the device or on the DataLoader).",
        parse=parse_words,
        cli_type=str,
        check=lambda v: None if v else f"is empty: pass rows from {', '.join(DEFAULT_ROWS)}",
    )
    data: DataKind = setting(
        "auto",
        help="cifar10 (JPEGs under --data-root), synthetic (scikit-learn digits upscaled to "
        "RGB) or auto (CIFAR-10 when --data-root exists).",
    )
    data_root: Path = setting(
        DEFAULT_DATA_ROOT, help="ImageFolder tree of CIFAR-10 training JPEGs."
    )
    pool_size: int = setting(
        4096,
        help="Distinct images decoded (rows that need more cycle through them).",
        check=at_least(1),
    )
    storage: Storage = setting(
        "memory",
        help="Where the training rows read images: memory (decoded uint8 tensor) or disk "
        "(image files decoded per item); data-disk always reads files.",
    )
    workers: int | None = setting(
        None,
        help="DataLoader workers of every loader (default: one per core, at most 8, for the "
        "hand-written loops that decode or transform per image; cl-ssl's default for its rows).",
        check=non_negative,
    )
    precision: Precision = setting(
        "auto", help="auto (bf16 autocast on CUDA, fp32 on CPU), fp32 or bf16, for every row."
    )
    channels_last: bool | None = setting(
        None,
        help="on, off or auto: channels-last for step and the strategy rows (auto: on for "
        "CUDA); the hand-written loops never use it.",
        parse=lambda text: parse_switch(text, "--channels-last"),
        cli_type=str | None,
        check=switch,
    )
    compile: bool = setting(
        False,
        help="torch.compile the backbone of step and the strategy rows (as --compile does in "
        "a bench); compilation falls in the warm-up, reported apart as warm-up s.",
        check=lambda v: None if isinstance(v, bool) else f"must be on or off, got {v!r}",
    )
    strategy_options: dict[str, dict[str, str]] = setting(
        help="Strategy option STRATEGY.KEY=VALUE (repeatable), e.g. replay.mode=double.",
        flags="--opt",
        parse=parse_option_flags,
        default_factory=dict,
    )
    seed: int = setting(0, help="Seed of weights, data order and views.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))
        object.__setattr__(self, "data_root", Path(self.data_root))
        check_fields(self)
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


def row_data(row: str) -> tuple[str, str]:
    """A strategy row's spec and ``--data-on-device`` value (no suffix: auto).

    Example:
        >>> row_data("naive@device"), row_data("lwf-ssl")
        (('naive', 'on'), ('lwf-ssl', 'auto'))
    """
    for suffix, mode in DATA_SUFFIXES.items():
        if row.endswith(suffix):
            return row.removesuffix(suffix), mode
    return row, "auto"


def parse_switch(value: str, flag: str) -> bool | None:
    """``on`` / ``off`` / ``auto`` -> True / False / None."""
    choices = {"on": True, "off": False, "auto": None}
    if value not in choices:
        raise ValueError(f"{flag} must be on, off or auto, got '{value}'")
    return choices[value]
