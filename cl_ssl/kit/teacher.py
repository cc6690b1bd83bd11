"""The teacher of distillation strategies: the model frozen when the previous experience ended.

LwF-SSL and CaSSLe both distil "the model as it was before this experience" into the
student. :class:`Teacher` owns that lifecycle: :meth:`Teacher.refresh` (from
``before_training_exp``) snapshots the model from the second experience on, and calling the
teacher runs the frozen copy without gradients.

BatchNorm is the one real choice (``bn_mode``):

- ``eval``: the copy normalises with its *running* statistics, the ones accumulated while
  training the previous experiences (what ``model.eval()`` gives). On new data its
  normalisation differs from the student's, so the two disagree even at equal weights.
- ``batch``: the copy normalises with the statistics of the current batch, like the student
  in training; at equal weights teacher and student then compute the same outputs, so a
  distillation term starts at 0. The copy's BatchNorm layers stop tracking, so its running
  buffers are never written.

Other layers (dropout) always run in eval mode: the teacher is a deterministic function of
the batch and never draws from the random stream.

With ``eval`` statistics every BatchNorm is a fixed affine map, so the forward pass runs a
copy with each BatchNorm folded into the convolution or linear layer before it
(``torch.fx``'s ``fuse``; a part fx cannot trace stays unfolded). Its outputs agree with
the snapshot's to float rounding (~1e-7) and its forward costs ~10% less
(docs/performance.md); :attr:`Teacher.model` stays the exact snapshot, so checkpoints and
tests see the model's own parameters and buffers.

Example:
    >>> teacher = Teacher(bn_mode="batch")
    >>> teacher.refresh(strategy)  # in before_training_exp: inactive on the first experience
    >>> if teacher.active:
    ...     target = teacher(strategy.mb_x).projections  # [B, V, D], no gradient
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.fx.experimental.optimization import fuse
from torch.nn.modules.batchnorm import _BatchNorm

from cl_ssl import distributed
from cl_ssl.models.ssl_model import frozen_copy

BNMode = Literal["eval", "batch"]
BN_MODES: tuple[str, ...] = ("eval", "batch")


class Teacher:
    """A frozen copy of the model, refreshed at the start of every experience after the first.

    Args:
        bn_mode: ``eval`` (running BatchNorm statistics) or ``batch`` (the current batch's
            statistics, like the student; running buffers untouched). See the module
            docstring.
        option: How the user spells ``bn_mode`` (e.g. ``lwf-ssl.teacher-bn``), for errors.

    Attributes:
        model: The frozen copy (the exact snapshot), or None before the second experience.
    """

    def __init__(self, bn_mode: BNMode = "eval", option: str = "bn_mode") -> None:
        if bn_mode not in BN_MODES:
            raise ValueError(f"{option} must be 'eval' or 'batch', got {bn_mode!r}")
        self.bn_mode = bn_mode
        self.model: nn.Module | None = None
        self._runner: nn.Module | None = None  # what runs: the snapshot, BatchNorms folded

    @property
    def active(self) -> bool:
        """Whether there is a teacher (from the second training experience on)."""
        return self.model is not None

    def refresh(self, strategy: Any) -> None:
        """Snapshot ``strategy.model`` if an experience was trained already, else no teacher.

        Call from ``before_training_exp``: the first experience has nothing to remember and
        runs exactly like naive.
        """
        if strategy.clock.train_exp_counter > 0:
            self.freeze(strategy.model)
        else:
            self.model = self._runner = None

    def freeze(self, model: nn.Module) -> None:
        """Make a frozen copy of ``model`` the teacher (gradient-free, modes per ``bn_mode``)."""
        self.model = frozen_copy(model)
        self._set_modes(self.model)
        self._runner = fold_batch_norms(self.model) if self.bn_mode == "eval" else self.model

    @torch.no_grad()
    def __call__(self, views: Tensor) -> Any:
        """The frozen model's output on ``views`` (:class:`SSLOutput`), without gradient.

        Under torchrun, every rank's outputs gathered (the global batch, as the student's).

        ``no_grad``, not ``inference_mode``: the outputs enter the student's loss as constants,
        and autograd must *save* them for the student's backward (the contrastive term's
        ``student @ teacher.T``), which inference tensors refuse ("Inference tensors cannot
        be saved for backward"); cloning them out would cost what inference mode saves. Under
        the template's autocast (``before_backward``) the teacher runs in bf16 too.
        """
        if self.model is None or self._runner is None:
            raise RuntimeError("there is no teacher before the second experience: check .active")
        self._set_modes(self._runner)  # cheap, and robust to anyone calling .train() on it
        # Under torchrun the student's outputs are the global batch's: so are the teacher's.
        return distributed.gather_output(self._runner(views))

    def _set_modes(self, model: nn.Module) -> None:
        model.eval()
        if self.bn_mode == "batch":
            for module in model.modules():
                if isinstance(module, _BatchNorm):
                    # Train mode + no tracking: batch statistics, running buffers never written
                    # (momentum 0 would still increment num_batches_tracked).
                    module.train()
                    module.track_running_stats = False


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """A copy of eval-mode ``model`` with every BatchNorm folded into the layer it follows.

    Folds Conv/Linear + BatchNorm pairs (``y = gamma * (W x + b - mu) / sigma + beta`` becomes
    one layer with ``W' = gamma / sigma * W``) in ``model`` if ``torch.fx`` can trace it, else
    in each top-level child it can trace (an untraceable child is kept as it is, unfolded).
    Parameters keep their memory format (channels-last stays channels-last).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
        >>> folded = fold_batch_norms(nn.Sequential(net))
        >>> any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        False
    """
    model = copy.deepcopy(model).eval()
    whole = _fused(model)
    if whole is not None:
        return whole.requires_grad_(False)
    for name, child in list(model.named_children()):
        fused = _fused(child)
        if fused is not None:
            setattr(model, name, fused)
    return model.requires_grad_(False)


def _fused(module: nn.Module) -> nn.Module | None:
    try:
        fused = fuse(module)
    except Exception:  # noqa: BLE001 - fx cannot trace it (e.g. branches on shapes): unfolded
        return None
    channels_last = any(
        p.ndim == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
        for p in module.parameters()
    )
    if channels_last:  # the folded weights are new tensors
        fused.to(memory_format=torch.channels_last)
    return fused.eval()
