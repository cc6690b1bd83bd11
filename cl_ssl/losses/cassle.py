"""CaSSLe's distillation (Fini et al., CVPR 2022, https://arxiv.org/abs/2112.04215).

A predictor g maps the student's projections into the frozen teacher's projection space and
the SSL loss itself compares them: for SimCLR, NT-Xent with (g(z_student_i), z_teacher_i)
as the positive pair of view i,

    L_distill = mean over views v of L_ssl( g(z_student^v), z_teacher^v ).

The predictor is what keeps the student plastic: it only has to make the old space
*predictable* from the new one, not equal to it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def cassle_predictor(dim: int, hidden_dim: int | None = None) -> nn.Module:
    """CaSSLe's predictor: Linear - BatchNorm - ReLU - Linear, ``dim -> dim``."""
    hidden = hidden_dim or 2 * dim
    return nn.Sequential(
        nn.Linear(dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, dim),
    )


def cassle_distillation(ssl_loss, predictor: nn.Module, student: Tensor, teacher: Tensor) -> Tensor:
    """CaSSLe's term for projections ``student``/``teacher`` of shape ``[B, V, D]``.

    Args:
        ssl_loss: The method's loss on pairs ``[B, 2, D]`` (e.g. ``SimCLR.loss``).
        predictor: Maps ``[N, D]`` student projections into the teacher's space.
        student: Student projections (with gradient).
        teacher: Frozen teacher projections (detached here).

    Example:
        >>> loss = cassle_distillation(SimCLR().loss, cassle_predictor(128), z_s, z_t)
    """
    if student.shape != teacher.shape or student.ndim != 3:
        raise ValueError(
            f"student and teacher must both be [B, V, D], got {tuple(student.shape)} and "
            f"{tuple(teacher.shape)}"
        )
    batch, views, dim = student.shape
    predicted = predictor(student.reshape(batch * views, dim)).view(batch, views, dim)
    teacher = teacher.detach()
    terms = [ssl_loss(torch.stack([predicted[:, v], teacher[:, v]], dim=1)) for v in range(views)]
    return torch.stack(terms).mean()
