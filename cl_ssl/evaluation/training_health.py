"""Embedding health during training, and the share of each step spent waiting for data.

:class:`TrainingHealth` is an Avalanche metric on the training steps, logged to TensorBoard
(``Health/*``) like the loss:

- every ``every`` steps (the template's host-read cadence, so no extra device sync is
  added in between), the health of the step's embeddings (:mod:`cl_ssl.evaluation.health`):
  per-dimension std of the normalised projections as a ratio to 1/sqrt(D) (collapse: far
  below 1), their effective rank and the backbone features', alignment of the two views
  and uniformity (Wang & Isola, 2020). Under torchrun the step's outputs are the global
  batch's.
- at every epoch's end, ``Health/data_wait_share``: the time from one step's end to the next
  step's start (the DataLoader handing over a batch, and its copy to the device) over the
  epoch's wall time. Near 0: the model is the bottleneck; near 1: the data is. On CUDA
  both are measured on the device (:class:`StepClock`): the host runs ahead of the GPU, so
  the share is the GPU's idle time between steps, read once per epoch, never per step.

:attr:`TrainingHealth.data_wait_seconds` accumulates over the run for the summary.

Example:
    >>> evaluator = EvaluationPlugin(TrainingHealth(every=50), loggers=[tensorboard])
"""

from __future__ import annotations

import time

import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from cl_ssl.evaluation.health import effective_rank, embedding_health


class StepClock:
    """Time marks: the host clock, or CUDA events recorded on the device's current stream.

    An event pair (end of step i, start of step i + 1) times the GPU's idle gap: about 0
    while queued work keeps it busy, the wait when the next batch (launched by the host)
    comes late. :meth:`seconds` reads events after waiting for the later one: call it at
    an epoch's end, not per step.

    Example:
        >>> clock = StepClock(torch.device("cpu"))
        >>> start = clock.mark()
        >>> clock.seconds(start, clock.mark()) >= 0
        True
    """

    def __init__(self, device: torch.device | None = None) -> None:
        self.cuda = device is not None and device.type == "cuda"

    def mark(self) -> float | torch.cuda.Event:
        """Now, on the host or on the device's stream."""
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, start, end) -> float:
        """Seconds from mark ``start`` to mark ``end``."""
        if not self.cuda:
            return end - start
        end.synchronize()
        return start.elapsed_time(end) / 1000


class TrainingHealth(PluginMetric[dict]):
    """Embedding-health scalars every ``every`` steps; data-wait share every epoch."""

    def __init__(self, every: int = 50) -> None:
        super().__init__()
        self.every = every
        self.last: dict[str, float] = {}
        self.data_wait_seconds = 0.0  # over the whole run
        self._clock = StepClock()
        self._epoch_start = self._step_end = self._clock.mark()
        self._gaps: list[tuple] = []  # (end of a step, start of the next), this epoch

    def reset(self) -> None:
        self.last = {}

    def result(self) -> dict:
        return dict(self.last)

    def before_training_epoch(self, strategy) -> None:
        self._clock = StepClock(getattr(strategy, "device", None))
        self._epoch_start = self._step_end = self._clock.mark()
        self._gaps = []

    def before_training_iteration(self, strategy) -> None:
        self._gaps.append((self._step_end, self._clock.mark()))

    def after_training_iteration(self, strategy) -> list[MetricValue]:
        values = []
        step = strategy.clock.train_iterations
        if step % self.every == 0:
            output = strategy.mb_output
            projections = output.projections.detach()
            if projections.ndim == 3 and projections.shape[1] >= 2:
                health = embedding_health(pair=projections[:, :2])
            else:
                health = embedding_health(projections.flatten(0, 1))
            self.last = {
                "std_ratio": health.std_ratio,
                "effective_rank": health.effective_rank,
                "feature_effective_rank": effective_rank(output.features[:, 0].detach()),
                "uniformity": health.uniformity,
            }
            if health.alignment is not None:
                self.last["alignment"] = health.alignment
            values = [MetricValue(self, f"Health/{k}", v, step) for k, v in self.last.items()]
        self._step_end = self._clock.mark()
        return values

    def after_training_epoch(self, strategy) -> list[MetricValue]:
        elapsed = self._clock.seconds(self._epoch_start, self._clock.mark())
        waited = sum(self._clock.seconds(end, start) for end, start in self._gaps)
        self._gaps = []
        self.data_wait_seconds += waited
        share = waited / elapsed if elapsed > 0 else 0.0
        step = strategy.clock.train_iterations
        return [MetricValue(self, "Health/data_wait_share", share, step)]

    def __str__(self) -> str:
        return "TrainingHealth"
