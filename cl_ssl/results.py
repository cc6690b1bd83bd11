"""What a bench produced, in memory: one result per (strategy, seed) run, and the failures.

:mod:`cl_ssl.outputs` writes these to a run directory and reads finished ones back (a
resumed bench summarises the runs it did not redo); :mod:`cl_ssl.bench` produces them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from cl_ssl.reporting.summary import headline_table, method_column
from cl_ssl.reporting.tables import TIDY_COLUMNS, result_matrix


@dataclass
class StrategyResult:
    """What one strategy run produced."""

    name: str
    metrics: pd.DataFrame
    train_seconds: float
    eval_seconds: float
    images_seen: int
    directory: Path
    representation_seconds: float = 0.0
    steps: int = 0
    seed: int = 0
    data_wait_seconds: float = 0.0

    @property
    def data_wait_pct(self) -> float:
        """Share of the training time spent waiting for the next batch, in percent."""
        return (
            100 * self.data_wait_seconds / self.train_seconds
            if self.train_seconds
            else float("nan")
        )

    @property
    def ms_per_step(self) -> float:
        """Mean training step time (all plugins' work included), in milliseconds."""
        return 1000 * self.train_seconds / self.steps if self.steps else float("nan")

    @property
    def images_per_step(self) -> float:
        """Mean images (each two views) per training step: replay's compute shows here."""
        return self.images_seen / self.steps if self.steps else float("nan")

    @property
    def images_per_second(self) -> float:
        """Training throughput: images (each two views) per second of training."""
        return self.images_seen / self.train_seconds if self.train_seconds else float("nan")

    @property
    def loss_matrix(self) -> pd.DataFrame:
        """The SSL-loss R matrix."""
        return result_matrix(self.metrics, "ssl_loss")

    def matrix(self, metric: str) -> pd.DataFrame:
        """The R matrix of ``metric`` (``ssl_loss``, ``knn20``, ``linear``, ``nmi``, ...)."""
        return result_matrix(self.metrics, metric)

    @property
    def metric_names(self) -> list[str]:
        """Metrics this run measured, in measurement order."""
        return list(dict.fromkeys(self.metrics["metric"]))

    def timings(self) -> dict:
        """The run's timing row for :func:`cl_ssl.reporting.report.headline_table`."""
        return {
            "strategy": self.name,
            "seed": self.seed,
            "train_s": self.train_seconds,
            "eval_s": self.eval_seconds,
            "images_per_s": self.images_per_second,
            "ms_per_step": self.ms_per_step,
            "images_per_step": self.images_per_step,
            "data_wait_pct": self.data_wait_pct,
        }


@dataclass
class BenchResult:
    """Every (strategy, seed) result and the run directory."""

    directory: Path
    strategies: list[StrategyResult]
    failures: list[StrategyFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no (strategy, seed) run failed."""
        return not self.failures

    @property
    def tidy(self) -> pd.DataFrame:
        """Every finished strategy's tidy rows."""
        if not self.strategies:
            return pd.DataFrame(columns=TIDY_COLUMNS)
        return pd.concat([r.metrics for r in self.strategies], ignore_index=True)

    @property
    def timings(self) -> pd.DataFrame:
        """One timing row per (strategy, seed)."""
        return pd.DataFrame([r.timings() for r in self.strategies])

    def summary(self, numeric: bool = True) -> pd.DataFrame:
        """One row per strategy: stability and plasticity figures side by side, and cost.

        In a grid of several methods, one row per (method, strategy), method first.
        """
        return method_column(headline_table(self.tidy, self.timings, numeric=numeric))


@dataclass(frozen=True)
class StrategyFailure:
    """A (strategy, seed) run that stopped with an error; its last good checkpoint stays.

    Attributes:
        name: The run's strategy, e.g. ``lwf-ssl``.
        seed: Its training seed.
        experience: Experience being trained (-1: before training, e.g. building it).
        epoch: Epoch within that experience.
        step: Step within that epoch.
        error: The exception's class name.
        message: The exception's message.
        directory: The run's directory.
    """

    name: str
    seed: int
    experience: int
    epoch: int
    step: int
    error: str
    message: str
    directory: Path

    def describe(self) -> str:
        """One line: where it stopped and why."""
        where = (
            f"experience {self.experience}, epoch {self.epoch}, step {self.step}"
            if self.experience >= 0
            else "before training"
        )
        return f"{self.name} (seed {self.seed}) failed at {where}: {self.error}: {self.message}"

    def to_dict(self) -> dict:
        return {**asdict(self), "directory": str(self.directory)}
