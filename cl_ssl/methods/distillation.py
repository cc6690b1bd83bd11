"""The distillation forms a method declares (CaSSLe, Fini et al., CVPR 2022).

``SSLMethod.distillation_loss`` compares a student's predicted embeddings p = g(z_s) with a
frozen teacher's z_t, in the method's loss units. Two general forms live here, both on
``[B, V, D]`` tensors (B images, V views):

- :func:`contrastive_distillation`, CaSSLe's SimCLR form with its own temperature (0.2 in
  the paper code, ``cassle/losses/simclr.py: simclr_distill_loss_func``), SimCLR's term;
- :func:`ssl_loss_distillation`, the paper's generic recipe: the method's loss on the pair
  (p^v, z_t^v) of every view v, averaged (``SSLMethod.distillation_loss``'s default, Barlow
  Twins' term).

They belong to the methods (each method picks its form); the strategy kit
(:mod:`cl_ssl.kit`) calls them through the method, so the arrow points from the kit down to
the methods, never up.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def check_distillation_pair(predicted: Tensor, teacher: Tensor) -> None:
    """Raise unless ``predicted`` and ``teacher`` are both ``[B, V, D]`` of one shape."""
    if predicted.shape != teacher.shape or predicted.ndim != 3:
        raise ValueError(
            f"predicted and teacher must both be [B, V, D], got {tuple(predicted.shape)} and "
            f"{tuple(teacher.shape)}"
        )


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
    check_distillation_pair(predicted, teacher)
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
    check_distillation_pair(predicted, teacher)
    teacher = teacher.detach()
    views = predicted.shape[1]
    pairs = [torch.stack([predicted[:, v], teacher[:, v]], dim=1) for v in range(views)]
    return torch.stack([ssl_loss(pair) for pair in pairs]).mean()
