"""CaSSLe's distillation (Fini et al., CVPR 2022, https://arxiv.org/abs/2112.04215).

A predictor g maps the student's projections z_s into the frozen teacher's projection space,
and the SSL objective itself compares the prediction p = g(z_s) with the teacher's z_t. The
predictor is what keeps the student plastic: it only has to make the old space
*predictable* from the new one, not equal to it.

The predictor lives here (strategies build it); the term itself is the method's
(``SSLMethod.distillation_loss``, whose forms are in :mod:`cl_ssl.methods.distillation`):
the kit calls methods, methods never import the kit.
"""

from __future__ import annotations

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


def predict_views(predictor: nn.Module, student: Tensor) -> Tensor:
    """``g`` applied to student projections ``[B, V, D]`` (all B*V views in one batch)."""
    if student.ndim != 3:
        raise ValueError(f"student projections must be [B, V, D], got {tuple(student.shape)}")
    batch, views, dim = student.shape
    return predictor(student.reshape(batch * views, dim)).view(batch, views, -1)
