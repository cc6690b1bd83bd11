"""Learning-rate schedules, restarted at every experience and stepped per iteration.

``cosine``: a linear warmup over the first W steps, then a cosine decay to 0 at the last of
the experience's T steps (solo-learn's and Lightly's recipe, restarted per task as CaSSLe
does, each task being a training run of its own)::

    lr(s) = base * (s + 1) / W                                  for s < W
    lr(s) = base * (1 + cos(pi * (s - W) / (T - W))) / 2        for W <= s < T

``constant``: ``lr(s) = base``. Every parameter group follows the schedule from its own
``initial_lr`` (the base rate it was created with), including groups that plugins add while
training (CaSSLe's predictor).

Example:
    >>> schedule = LRSchedule("cosine", warmup_epochs=1)
    >>> schedule.factor(step=0, steps_per_epoch=10, epochs=5)   # first warmup step
    0.1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # torch for the annotation only: cl_ssl.config (and `clssl --help`) import this
    from torch.optim import Optimizer

ScheduleKind = Literal["constant", "cosine"]
SCHEDULES: tuple[str, ...] = ("constant", "cosine")


@dataclass(frozen=True)
class LRSchedule:
    """The schedule of one experience; ``warmup_epochs`` may be fractional."""

    kind: ScheduleKind = "constant"
    warmup_epochs: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown schedule '{self.kind}'; choose from: {', '.join(SCHEDULES)}")
        if self.warmup_epochs < 0:
            raise ValueError(f"--warmup-epochs must be >= 0, got {self.warmup_epochs}")

    def factor(self, step: int, steps_per_epoch: int, epochs: int) -> float:
        """The multiplier of the base rate at ``step`` (0-based) of the experience."""
        if self.kind == "constant":
            return 1.0
        total = max(1, steps_per_epoch * epochs)
        warmup = min(total, round(self.warmup_epochs * steps_per_epoch))
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    def apply(self, optimizer: Optimizer, step: int, steps_per_epoch: int, epochs: int) -> None:
        """Set every group's rate for ``step``: its ``initial_lr`` times :meth:`factor`."""
        factor = self.factor(step, steps_per_epoch, epochs)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
