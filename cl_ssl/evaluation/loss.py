"""Avalanche's loss metrics, averaged on the device: no host read per training step.

Avalanche's :class:`~avalanche.evaluation.metrics.mean.Mean` turns every step's loss into a
Python float (``float(value)``): on a GPU the host then waits for each step to finish before
it can queue the next. :class:`DeviceMean` keeps the weighted sum as a tensor and reads it
once, when the metric is emitted (end of epoch, experience or stream). Names, reset and emit
points are Avalanche's own, so logs and ``metrics.csv`` tags are unchanged.

Example:
    >>> metrics = loss_metrics(epoch=True, experience=True, stream=True)
    >>> [str(m) for m in metrics]
    ['Loss_Epoch', 'Loss_Exp', 'Loss_Stream']
"""

from __future__ import annotations

from typing import SupportsFloat

from avalanche.evaluation.metrics import loss_metrics as avalanche_loss_metrics
from avalanche.evaluation.metrics.loss import LossPluginMetric
from avalanche.evaluation.metrics.mean import Mean
from torch import Tensor


class DeviceMean(Mean):
    """Weighted mean ``sum(w_i x_i) / sum(w_i)`` whose sum stays a tensor until :meth:`result`.

    Example:
        >>> mean = DeviceMean()
        >>> mean.update(torch.tensor(2.0), weight=3)
        >>> mean.update(torch.tensor(4.0), weight=1)
        >>> mean.result()
        2.5
    """

    def update(self, value: SupportsFloat | Tensor, weight: SupportsFloat = 1.0) -> None:
        weight = float(weight)  # a Python number (the batch size): no device read
        if isinstance(value, Tensor):
            value = value.detach()
        self.summed = self.summed + value * weight
        self.weight += weight

    def result(self) -> float:
        return float(self.summed) / self.weight if self.weight else 0.0


def loss_metrics(
    *, epoch: bool = False, experience: bool = False, stream: bool = False
) -> list[LossPluginMetric]:
    """Avalanche's ``loss_metrics`` (same flags, same names) averaged with :class:`DeviceMean`."""
    metrics = avalanche_loss_metrics(epoch=epoch, experience=experience, stream=stream)
    for metric in metrics:
        # The one Mean each metric averages with (LossMetric._mean_loss); nothing else reads it.
        metric._loss._mean_loss = DeviceMean()
    return metrics
