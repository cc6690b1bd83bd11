"""Replay from an online buffer fed frame by frame: ``--opt replay.buffer=minred|...``.

:class:`StreamingReplay` is what the ``replay`` strategy runs when ``replay.buffer`` names a
buffer of :mod:`cl_ssl.kit.buffers` (instead of Avalanche's storage policies, which take
random images of an experience once it has ended). Every incoming batch enters the buffer
as it arrives, the first time it is trained on (``strategy.fresh_batch``), so the buffer
decorrelates a stream of near-duplicate frames *within* an experience as well as across
them, as in Purushwalkam et al. (ECCV 2022).

A step of B images (equal compute with every other strategy) keeps B - m of its new
images, a random subset drawn with the plugin's generator, and replays m buffered ones
(``batch-size-mem``, default B // 2), drawn without repetition once the buffer holds m.

MinRed's features are projections of clean (evaluation) views, the model in eval mode: a
frame enters with one, from a no-grad forward of the incoming batch, and a replayed
frame's is refreshed after the step that replayed it, from a no-grad forward of the
replayed rows. One kind of feature throughout: refreshing with the training forward's
augmented views (crops, colour jitter, batch statistics) made refreshed frames look
unlike everything and the others redundant, and MinRed kept fewer distinct VODs than
reservoir sampling (``tests/test_online.py`` checks it keeps more). Cost per step: a
no-grad forward of one view of the B incoming frames (once per incoming batch) and of the
m replayed ones, about a sixth of a training step. Other buffers need no features.

Under torchrun every rank adds the global batch (raw images and features gathered), and the
global step's buffered rows are drawn once with the shared generator and split between
ranks, so every rank holds the same buffer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cl_ssl import distributed
from cl_ssl.kit.buffers import build_buffer
from cl_ssl.template import experience_seed

REPLAYED_LABEL = -1  # labels of replayed rows: training never reads them


class StreamingReplay:
    """An online buffer and the per-step mixing of buffered rows into training batches.

    Args:
        kind: Buffer name of :data:`cl_ssl.kit.buffers.BUFFERS`.
        capacity: Frames kept.
        batch_size_mem: Buffered rows per full global step; None for half the batch.
    """

    def __init__(self, kind: str, capacity: int, batch_size_mem: int | None) -> None:
        self.kind, self.capacity, self.batch_size_mem = kind, capacity, batch_size_mem
        self.buffer = build_buffer(kind, capacity)
        self.generator = torch.Generator()
        self.replayed = 0  # buffered rows of a full global step
        self._incoming: list[Tensor] | None = None  # this step's new rows, before mixing
        self._index: Tensor | None = None  # buffer rows replayed this step (global draw)
        self._replayed: Tensor | None = None  # this rank's replayed raw images

    def start_experience(self, strategy: Any) -> None:
        """Seed the step draws for experience k; check the replayed share of a step."""
        k = strategy.experience.current_experience
        seed = strategy.train_seed or 0
        if k == 0 and len(self.buffer) == 0:  # a new run: the buffer's own draws seeded too
            self.buffer = build_buffer(self.kind, self.capacity, experience_seed(seed, 0, "buffer"))
        self.generator.manual_seed(experience_seed(seed, k, "replay"))
        self.replayed = replayed_rows(
            strategy, self.batch_size_mem, f"with replay.buffer={self.kind}"
        )

    def before_forward(self, strategy: Any) -> None:
        """Replace part of the step's new rows with buffered frames (once it holds enough)."""
        batch = strategy.mbatch
        self._incoming = list(batch) if strategy.fresh_batch else None
        self._index, self._replayed = None, None
        size, ranks = batch[0].shape[0], distributed.world_size()
        count = size * self.replayed // (strategy.train_mb_size * ranks)
        if count == 0 or len(self.buffer) < count * ranks:
            return
        index = self.buffer.sample(count * ranks, self.generator)
        keep = torch.randperm(size, generator=self.generator)[: size - count].sort().values
        mine = index[distributed.rank() * count : (distributed.rank() + 1) * count]
        device = batch[0].device
        keep = keep.to(device)
        replayed = self.buffer.images_at(mine).to(device, batch[0].dtype, non_blocking=True)
        batch[0] = torch.cat([batch[0][keep], replayed])
        for j in range(1, len(batch)):  # labels (never read in training), task labels
            fill = REPLAYED_LABEL if j == 1 else 0
            batch[j] = torch.cat([batch[j][keep], batch[j].new_full((count,), fill)])
        self._index, self._replayed = index, replayed

    def after_training_iteration(self, strategy: Any) -> None:
        """MinRed's lazy refresh of the replayed frames; insert the step's incoming frames.

        Every incoming frame enters, the first time its batch is trained on.
        """
        if self._index is not None and self.buffer.needs_features:
            features = distributed.gather(clean_features(strategy, self._replayed))
            self.buffer.update_features(self._index, features.cpu())
        self._index = self._replayed = None
        if self._incoming is None:
            return
        images = self._incoming[0]
        features = None
        if self.buffer.needs_features:
            features = distributed.gather(clean_features(strategy, images))
        images = distributed.gather(images)
        k = strategy.experience.current_experience
        self.buffer.add(images.cpu(), None if features is None else features.cpu(), experience=k)
        self._incoming = None

    def state_dict(self) -> dict:
        return {"buffer": self.buffer.state_dict(), "kind": self.kind}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != self.kind:
            raise ValueError(
                f"the checkpoint's replay buffer is {state.get('kind')!r}, this run's "
                f"replay.buffer is {self.kind!r}: resume with the checkpoint's options"
            )
        self.buffer.load_state_dict(state["buffer"])


def replayed_rows(strategy: Any, batch_size_mem: int | None, fix: str) -> int:
    """Buffered rows of a full global step: ``batch-size-mem``, or half the global batch.

    ``fix`` ends the one-line error when the share leaves no new (or no buffered) row.
    """
    batch = strategy.train_mb_size * distributed.world_size()  # the global batch
    replayed = batch_size_mem or batch // 2
    if not 0 < replayed < batch:
        raise ValueError(
            f"replay.batch-size-mem={replayed} must be between 1 and the batch size minus 1 "
            f"({batch - 1}) {fix}"
        )
    return replayed


@torch.no_grad()
def clean_features(strategy: Any, images: Tensor) -> Tensor:
    """Projections ``[B, D]`` of the clean views of raw ``images``, model in eval mode."""
    model = strategy.model
    was_training = model.training
    model.eval()  # running statistics: the batch's own would depend on its neighbours
    try:
        with strategy.autocast():
            views = strategy.augment.eval_view(images.to(strategy.device))
            if getattr(strategy, "channels_last", False):
                views = views.contiguous(memory_format=torch.channels_last)
            return model.head(model.embed(views)).float()
    finally:
        model.train(was_training)
