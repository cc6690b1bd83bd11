"""Projected Functional Regularization (Gomez-Villa et al., CVPR-W 2022, arXiv 2112.15022).

Plain functional regularization (feature distillation) pins the student's backbone features
h_t(x) to the frozen previous model's h_{t-1}(x) and costs plasticity. PFR puts a learned
*temporal projector* g between them: the new feature space only has to keep the old one
recoverable, ``g(h_t(x)) ~ h_{t-1}(x)``, measured by the cosine similarity S:

    L_PFR = - 1/N * sum_i S( g(h_t(x_i)), sg(h_{t-1}(x_i)) )

over the N = B*V views of a batch (the paper code averages the two views' means, the same
thing for equal view sizes), with sg the stop-gradient. The gradient reaches the student's
backbone and the projector, never the teacher.

The projector (:func:`pfr_projector`) follows the official code
(github.com/alviur/CVPR_PFR, ``cassle/distillers/pfr.py``): Linear F -> F/2, BatchNorm,
ReLU, Linear F/2 -> F on the backbone's F-d features. The formula is taken from, and tested
against, that code (``distill_loss``); the paper's equation numbers are not cited.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def pfr_projector(dim: int, hidden_dim: int | None = None) -> nn.Module:
    """PFR's temporal projector g: Linear - BatchNorm - ReLU - Linear, ``dim -> dim``.

    ``hidden_dim`` None means ``dim // 2`` (at least 1), as in the paper code.

    Example:
        >>> pfr_projector(512)  # 512 -> 256 -> 512
    """
    hidden = hidden_dim or max(1, dim // 2)
    return nn.Sequential(
        nn.Linear(dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, dim),
    )


def projected_functional_regularization(projected: Tensor, teacher: Tensor) -> Tensor:
    """``-mean_i cos(g(h_t(x_i)), sg(h_{t-1}(x_i)))`` over every view of every image.

    Args:
        projected: The projector's output on the student's backbone features, ``[B, V, F]``.
        teacher: The frozen previous model's backbone features ``[B, V, F]`` (detached here).

    Returns:
        A scalar in [-1, 1]: -1 when every projection points along its teacher feature.

    Example:
        >>> h = torch.randn(8, 2, 32)
        >>> bool(projected_functional_regularization(h, 3 * h) < -0.999)  # aligned: -1
        True
    """
    if projected.shape != teacher.shape or projected.ndim != 3:
        raise ValueError(
            f"projected and teacher features must both be [B, V, F], got "
            f"{tuple(projected.shape)} and {tuple(teacher.shape)}"
        )
    return -F.cosine_similarity(projected, teacher.detach(), dim=-1).mean()
