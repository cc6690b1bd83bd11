"""Replay: a fixed-size buffer of raw past images mixed into the SSL batches.

The buffer is Avalanche's storage policy, unchanged on unlabeled data (it stores dataset
items: raw uint8 images with their dummy targets and task labels). Buffered images are raw:
the template augments them like the current batch, fresh views every time they are replayed.

- ``experience-balanced`` (default): the buffer is split equally between the experiences
  seen so far (random images of each).
- ``reservoir``: reservoir sampling over every image seen, regardless of experience.

``buffer`` replaces those end-of-experience policies with an online buffer fed with every
incoming batch as it arrives (:mod:`cl_ssl.kit.streaming_replay`, :mod:`cl_ssl.kit.buffers`):
``minred`` (keeps the least redundant frames, Purushwalkam et al., ECCV 2022), ``reservoir``,
``fifo`` or ``balanced`` (equal share per experience); replay then starts within the first
experience, as soon as the buffer holds a step's share. The choice for ordered video
frames and ``--online`` training.

How buffered images join a step (``mode``), from the second experience on:

- ``equal`` (default): equal compute with every other strategy. The template's loader is
  kept (same steps, same order of new images as naive); in each step of B images the last
  ``m`` rows (``batch-size-mem``, default B // 2; a shorter last step of b images replaces
  ``b * m // B``) are replaced by buffered images drawn with the plugin's own generator
  (seeded by ``experience_seed(train_seed, k, "replay")``; without repetition when the
  buffer holds enough). A step is B images, half new and half replayed, and an epoch has
  naive's number of steps. The trade-off: each step sees only B - m new images, so an epoch
  touches half of the new data (a different half each epoch, the loader reshuffles) at
  naive's cost; NT-Xent, which depends on the batch size, sees naive's batch size.
  Under torchrun B and ``m`` are the global batch's: every rank draws the global step's
  buffered rows with the same generator and keeps its share, so no image is replayed
  twice in a step.
- ``double``: Avalanche's ``ReplayDataLoader``: each step is B new images plus
  ``batch-size-mem`` buffered ones (default B), so steps are twice naive's size and cost.

Example:
    clssl bench --stream digits-periods --strategy naive,replay --opt replay.mem-size=200
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from avalanche.benchmarks.utils import as_classification_dataset
from avalanche.training.plugins import ReplayPlugin as AvalancheReplayPlugin
from avalanche.training.storage_policy import ExperienceBalancedBuffer, ReservoirSamplingBuffer
from torch import Tensor
from torch.utils.data import default_collate

from cl_ssl import distributed
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.kit.streaming_replay import StreamingReplay, replayed_rows
from cl_ssl.registry import register_strategy
from cl_ssl.template import experience_seed


@dataclass(frozen=True)
class ReplayOptions:
    """Replay options (``--opt replay.KEY=VALUE``).

    Attributes:
        mem_size: Images kept in the buffer.
        policy: ``experience-balanced`` or ``reservoir``.
        mode: ``equal`` (buffered images replace part of each step) or ``double`` (they are
            added to it).
        batch_size_mem: Buffered images per full step; None means half the training batch
            size in ``equal`` mode (must stay below it) and the whole of it in ``double``.
        buffer: An online buffer fed with every incoming batch (``minred``, ``reservoir``,
            ``fifo``, ``balanced``) instead of ``policy``; None keeps ``policy``.
    """

    mem_size: int = 200
    policy: Literal["experience-balanced", "reservoir"] = "experience-balanced"
    mode: Literal["equal", "double"] = "equal"
    batch_size_mem: int | None = None
    buffer: Literal["minred", "reservoir", "fifo", "balanced"] | None = None

    def __post_init__(self) -> None:
        if self.mem_size < 1:
            raise ValueError(f"replay.mem-size must be at least 1, got {self.mem_size}")
        if self.mode not in ("equal", "double"):
            raise ValueError(f"replay.mode must be 'equal' or 'double', got {self.mode!r}")
        if self.batch_size_mem is not None and self.batch_size_mem < 1:
            raise ValueError(
                f"replay.batch-size-mem must be at least 1 or none, got {self.batch_size_mem}"
            )
        if self.mode == "double" and distributed.launched():
            raise ValueError(
                "replay.mode=double uses Avalanche's ReplayDataLoader, which cl-ssl does not "
                "shard under torchrun: use replay.mode=equal (the default)"
            )
        if self.buffer is not None and self.mode == "double":
            raise ValueError(
                f"replay.buffer={self.buffer} mixes buffered frames into each step: use "
                "replay.mode=equal (the default) with it"
            )


def materialise(buffer, device: torch.device | str) -> list[Tensor]:
    """Every item of ``buffer`` collated into one tensor per field (images, labels, tasks)."""
    items = [buffer[i] for i in range(len(buffer))]
    return [field.to(device) for field in default_collate(items)]


@register_strategy("replay")
class ReplayPlugin(AvalancheReplayPlugin):
    """Avalanche's storage policies; buffered images replace (or join) each step's images."""

    Options = ReplayOptions

    def __init__(self, options: ReplayOptions | None = None) -> None:
        self.options = options = options or ReplayOptions()
        self.streaming = (
            StreamingReplay(options.buffer, options.mem_size, options.batch_size_mem)
            if options.buffer is not None
            else None
        )
        if options.policy == "reservoir":
            policy = ReservoirSamplingBuffer(options.mem_size)
        else:
            policy = ExperienceBalancedBuffer(options.mem_size, adaptive_size=True)
        super().__init__(
            mem_size=options.mem_size, batch_size_mem=options.batch_size_mem, storage_policy=policy
        )
        self.memory: list[Tensor] | None = None  # the buffer on the device, equal mode
        self.generator: torch.Generator | None = None
        self.replayed = 0  # buffered rows of a full step, equal mode

    def state_dict(self) -> dict:
        """The buffer's images, labels and reservoir weights, per group (experience)."""
        if self.streaming is not None:
            return {"streaming": self.streaming.state_dict()}
        policy = self.storage_policy
        if isinstance(policy, ExperienceBalancedBuffer):
            groups = {int(k): _reservoir_state(g) for k, g in policy.buffer_groups.items()}
            return {"groups": groups, "experiences": policy._num_exps}
        return {"reservoir": _reservoir_state(policy)}

    def load_state_dict(self, state) -> None:
        if ("streaming" in state) != (self.streaming is not None):
            raise ValueError(
                "the checkpoint's replay buffer is of another kind than this run's "
                "(replay.buffer): resume with the checkpoint's options"
            )
        if self.streaming is not None:
            self.streaming.load_state_dict(state["streaming"])
            return
        policy = self.storage_policy
        if ("groups" in state) != isinstance(policy, ExperienceBalancedBuffer):
            raise ValueError(
                "the checkpoint's replay buffer has another replay.policy than this run's: "
                "resume with the checkpoint's options"
            )
        if isinstance(policy, ExperienceBalancedBuffer):
            policy.buffer_groups = {k: _load_reservoir(g) for k, g in state["groups"].items()}
            policy._num_exps = int(state["experiences"])
        else:
            loaded = _load_reservoir(state["reservoir"])
            policy.buffer, policy._buffer_weights = loaded.buffer, loaded._buffer_weights

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        if self.options.mode == "double" and getattr(strategy, "online", False):
            raise ValueError(
                "replay.mode=double brings its own loader, which --online would not order: "
                "use replay.mode=equal"
            )
        if self.streaming is not None:
            self.streaming.start_experience(strategy)
            return
        if self.options.mode == "double":
            super().before_training_exp(strategy, *args, **kwargs)  # Avalanche's loader
            return
        if len(self.storage_policy.buffer) == 0:
            return  # first experience: nothing to replay, it runs like naive
        self.replayed = replayed_rows(
            strategy,
            self.options.batch_size_mem,
            "in equal mode: lower it or use replay.mode=double",
        )
        # Once per experience, not per step: the buffer is small and steps are many.
        self.memory = materialise(self.storage_policy.buffer, strategy.device)
        k = strategy.experience.current_experience
        self.generator = torch.Generator().manual_seed(
            experience_seed(strategy.train_seed or 0, k, "replay")
        )

    def before_forward(self, strategy, *args, **kwargs) -> None:
        if self.streaming is not None:
            self.streaming.before_forward(strategy)
            return
        if self.memory is None:
            return
        batch = strategy.mbatch
        size = batch[0].shape[0]
        ranks = distributed.world_size()
        count = size * self.replayed // (strategy.train_mb_size * ranks)
        if count == 0:
            return
        if len(batch) != len(self.memory):
            raise ValueError(
                f"buffer items have {len(self.memory)} fields but batches {len(batch)}: "
                "replay needs the stream's (image, label, task) items"
            )
        available, drawn = self.memory[0].shape[0], count * ranks
        # The global step's draw (the same generator on every rank), this rank's share of it.
        if available >= drawn:
            index = torch.randperm(available, generator=self.generator)[:drawn]
        else:
            index = torch.randint(available, (drawn,), generator=self.generator)
        index = index[distributed.rank() * count : (distributed.rank() + 1) * count]
        # Non-blocking: a blocking copy to a GPU would wait for every queued step first.
        index = index.to(batch[0].device, non_blocking=True)
        for j, field in enumerate(self.memory):
            batch[j] = torch.cat([batch[j][: size - count], field[index].to(batch[j].dtype)])

    def after_training_iteration(self, strategy, *args, **kwargs) -> None:
        if self.streaming is not None:
            self.streaming.after_training_iteration(strategy)

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self.streaming is not None:
            return  # the online buffer took every frame as it arrived
        self.memory = None
        # Avalanche 0.6.0's ReplayPlugin calls the storage policy's deprecated update(),
        # which forces its DeprecationWarning on; post_adapt is the same update, current API.
        self.storage_policy.post_adapt(strategy, strategy.experience)


def _reservoir_state(buffer: ReservoirSamplingBuffer) -> dict:
    return {
        "max_size": buffer.max_size,
        # Images and labels (and task labels, when items carry them), one tensor each.
        "fields": materialise(buffer.buffer, "cpu") if len(buffer.buffer) else None,
        "weights": buffer._buffer_weights.cpu(),
    }


def _load_reservoir(state: dict) -> ReservoirSamplingBuffer:
    buffer = ReservoirSamplingBuffer(int(state["max_size"]))
    if state["fields"] is not None:
        images, labels, *tasks = state["fields"]
        if tasks and bool((tasks[0] != 0).any()):
            raise ValueError("replay buffers with task labels other than 0 cannot be restored")
        # The streams' own wrapping, so the buffer concatenates with new experiences as before.
        buffer.buffer = as_classification_dataset(ImageTensorDataset(images, labels))
    buffer._buffer_weights = state["weights"]
    return buffer
