"""Replay: a fixed-size buffer of raw past images mixed into every SSL batch.

Avalanche's ``ReplayPlugin`` and storage policies work unchanged on unlabeled data (the
buffer stores dataset items, raw uint8 images with their dummy targets), so this file only
maps options onto them. Buffered images are raw: they are augmented by the template like
the current batch, fresh views every time they are replayed.

- ``experience-balanced`` (default): the buffer is split equally between the experiences
  seen so far (random images of each).
- ``reservoir``: reservoir sampling over every image seen, regardless of experience.

From the second experience on, each step's batch is ``batch_size`` current images plus
``batch-size-mem`` buffered ones (default: the training batch size, so steps are twice as
large, as in Avalanche).

Example:
    clssl bench --stream digits-periods --strategy replay --opt replay.mem-size=200
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avalanche.training.plugins import ReplayPlugin as AvalancheReplayPlugin
from avalanche.training.storage_policy import ExperienceBalancedBuffer, ReservoirSamplingBuffer

from cl_ssl.registry import register_strategy


@dataclass(frozen=True)
class ReplayOptions:
    """Replay options (``--opt replay.KEY=VALUE``).

    Attributes:
        mem_size: Images kept in the buffer.
        policy: ``experience-balanced`` or ``reservoir``.
        batch_size_mem: Buffered images per step; None means the training batch size.
    """

    mem_size: int = 200
    policy: Literal["experience-balanced", "reservoir"] = "experience-balanced"
    batch_size_mem: int | None = None


@register_strategy("replay")
class ReplayPlugin(AvalancheReplayPlugin):
    """Avalanche replay with a label-free storage policy."""

    Options = ReplayOptions

    def __init__(self, options: ReplayOptions | None = None) -> None:
        self.options = options or ReplayOptions()
        if self.options.mem_size < 1:
            raise ValueError(f"replay.mem-size must be at least 1, got {self.options.mem_size}")
        if self.options.policy == "reservoir":
            policy = ReservoirSamplingBuffer(self.options.mem_size)
        else:
            policy = ExperienceBalancedBuffer(self.options.mem_size, adaptive_size=True)
        super().__init__(
            mem_size=self.options.mem_size,
            batch_size_mem=self.options.batch_size_mem,
            storage_policy=policy,
        )

    def after_training_exp(self, strategy, **kwargs) -> None:
        # Avalanche 0.6.0's ReplayPlugin calls the storage policy's deprecated update(),
        # which forces its DeprecationWarning on; post_adapt is the same update, current API.
        self.storage_policy.post_adapt(strategy, strategy.experience)
