"""CaSSLe's distillation (Fini et al., CVPR 2022, https://arxiv.org/abs/2112.04215).

A predictor g maps the student's projections z_s into the frozen teacher's projection space,
and the SSL objective itself compares the prediction p = g(z_s) with the teacher's z_t. The
predictor is what keeps the student plastic: it only has to make the old space
*predictable* from the new one, not equal to it.

Each method declares its term (``SSLMethod.distillation_loss`` in ``cl_ssl.methods``: the
reference code's form and coefficient, in the method's loss units). Two general forms live
here, both on ``[B, V, D]`` tensors (B images, V views):

- :func:`contrastive_distillation`, CaSSLe's SimCLR form with its own temperature (0.2 in
  the paper code, ``cassle/losses/simclr.py: simclr_distill_loss_func``), SimCLR's term;
- :func:`ssl_loss_distillation`, the paper's generic recipe: the method's loss on the pair
  (p^v, z_t^v) of every view v, averaged (``SSLMethod.distillation_loss``'s default, Barlow
  Twins' term).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def cassle_predictor(dim: int, hidden_dim: int | None = None) -> nn.Module:
    """CaSSLe's predictor: Linear - BatchNorm - ReLU - Linear, ``dim -> dim``.

    ``hidden_dim`` None means ``2 * dim`` (the paper code uses 2048 for 256-d projections).
    """
    hidden = hidden_dim or 2 * dim
    return nn.Sequential(
        nn.Linear(dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, dim),
    )


def _check_pair(predicted: Tensor, teacher: Tensor) -> None:
    if predicted.shape != teacher.shape or predicted.ndim != 3:
        raise ValueError(
            f"predicted and teacher must both be [B, V, D], got {tuple(predicted.shape)} and "
            f"{tuple(teacher.shape)}"
        )


def predict_views(predictor: nn.Module, student: Tensor) -> Tensor:
    """``g`` applied to student projections ``[B, V, D]`` (all B*V views in one batch)."""
    if student.ndim != 3:
        raise ValueError(f"student projections must be [B, V, D], got {tuple(student.shape)}")
    batch, views, dim = student.shape
    return predictor(student.reshape(batch * views, dim)).view(batch, views, -1)


def contrastive_distillation(
    predicted: Tensor, teacher: Tensor, temperature: float = 0.2
) -> Tensor:
    """CaSSLe's SimCLR distillation between predictions ``p`` and teacher projections ``z``.

    All N = B*V views form one set. With P and Z the L2-normalised ``[N, D]`` rows and the
    logits M = P Z^T / temperature (prediction of view a against every teacher view b),

        L = 1/2 * ( 1/N sum_a -log softmax(M[a])_a  +  1/N sum_a -log softmax(M^T[a])_a ):

    each prediction must pick its own teacher projection (same image, same view) among all N
    teacher projections, and each teacher projection its own prediction among all N. As in
    the paper code, no candidate is masked out: the same image's other view is a negative.
    The teacher is detached; the gradient reaches the predictor and the student.

    Args:
        predicted: ``g(z_student)``, ``[B, V, D]``.
        teacher: Frozen teacher projections ``[B, V, D]``.
        temperature: Distillation temperature (CaSSLe's ``distill_temperature``).

    Example:
        >>> z_t, noise = torch.randn(8, 2, 16), torch.randn(8, 2, 16)
        >>> contrastive_distillation(z_t, z_t) < contrastive_distillation(z_t + noise, z_t)
        tensor(True)
    """
    _check_pair(predicted, teacher)
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    p = F.normalize(predicted.flatten(0, 1), dim=1)
    z = F.normalize(teacher.detach().flatten(0, 1), dim=1)
    logits = p @ z.T / temperature
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def ssl_loss_distillation(
    ssl_loss: Callable[[Tensor], Tensor], predicted: Tensor, teacher: Tensor
) -> Tensor:
    """The generic form: ``mean_v ssl_loss([p^v, z_t^v])``, the method's loss per view.

    Args:
        ssl_loss: The method's loss on pairs ``[B, 2, D]`` (e.g. ``SimCLR.loss``).
        predicted: ``g(z_student)``, ``[B, V, D]``.
        teacher: Frozen teacher projections ``[B, V, D]`` (detached here).

    Example:
        >>> term = ssl_loss_distillation(SimCLR().loss, predicted, z_t)
    """
    _check_pair(predicted, teacher)
    teacher = teacher.detach()
    views = predicted.shape[1]
    pairs = [torch.stack([predicted[:, v], teacher[:, v]], dim=1) for v in range(views)]
    return torch.stack([ssl_loss(pair) for pair in pairs]).mean()
