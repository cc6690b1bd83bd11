"""Embedding health: collapse and geometry statistics of one batch of embeddings ``[N, D]``.

Four label-free numbers that tell a collapsing or degenerate embedding from a healthy one:

- :func:`dimension_std`: mean per-dimension std of the L2-normalised embeddings (SimSiam,
  Chen & He 2021, https://arxiv.org/abs/2011.10566). ~``1/sqrt(D)`` for embeddings spread
  over the sphere, 0 for complete collapse; ``std_ratio = std * sqrt(D)`` puts it on a 0-1
  scale.
- :func:`effective_rank`: RankMe (Garrido et al. 2023, https://arxiv.org/abs/2210.02885), the
  entropy-based effective rank of Roy & Vetterli (2007): 1 for collapse, up to ``min(N, D)``.
- :func:`alignment` and :func:`uniformity`: Wang & Isola (2020,
  https://arxiv.org/abs/2005.10242); positives close (alignment low) and the batch spread over
  the sphere (uniformity very negative).

Everything runs without gradients, on the tensor's device, in float32 (bf16 embeddings from
autocast are upcast first), and returns Python floats.

Example:
    >>> health = embedding_health(pair=torch.stack([model(x0), model(x1)], dim=1))
    >>> health.std_ratio, health.effective_rank, health.alignment, health.uniformity
    (0.93, 87.2, 0.41, -3.6)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class EmbeddingHealth:
    """The statistics of :func:`embedding_health`.

    Attributes:
        std: :func:`dimension_std`.
        std_ratio: ``std * sqrt(D)``: ~1 spread over the sphere, 0 collapsed.
        effective_rank: :func:`effective_rank` (RankMe).
        alignment: :func:`alignment` of the two views; None when no pairs were given.
        uniformity: :func:`uniformity`.
    """

    std: float
    std_ratio: float
    effective_rank: float
    alignment: float | None
    uniformity: float


def _as_float(z: Tensor, name: str = "z") -> Tensor:
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 1:
        raise ValueError(f"{name} must be embeddings [N, D] with N, D >= 1, got {tuple(z.shape)}")
    return z.detach().float()


def _normalised(z: Tensor, name: str = "z") -> Tensor:
    return F.normalize(_as_float(z, name), dim=1)


@torch.no_grad()
def dimension_std(z: Tensor) -> float:
    """Mean over dimensions of the std over the batch of the L2-normalised embeddings.

    ``std = (1/D) sum_d std_n(z_nd / ||z_n||)``, the population std (no Bessel correction,
    so one image or a collapsed batch gives exactly 0). For embeddings uniform on the
    sphere it is ~``1/sqrt(D)``; SimSiam reads "far below 1/sqrt(D)" as collapse.

    Args:
        z: Embeddings ``[N, D]``.

    Example:
        >>> dimension_std(torch.ones(8, 4))
        0.0
    """
    return float(_normalised(z).std(dim=0, correction=0).mean())


@torch.no_grad()
def effective_rank(z: Tensor, eps: float = 1e-7) -> float:
    """RankMe: ``exp(-sum_k p_k log p_k)``, ``p_k = s_k / ||s||_1 + eps``.

    ``s`` are the singular values of ``z`` as given: uncentred and not row-normalised, as
    RankMe defines it (centring would remove a collapse onto one shared vector's direction,
    the very thing to detect). Scaling ``z`` leaves ``p``, hence the rank, unchanged. The
    value lies in ``[1, min(N, D)]`` (up to ``eps``): 1 when every embedding lies on one
    line, ``D`` when the batch fills every direction equally; rank-k data gives at most k.

    Args:
        z: Embeddings ``[N, D]``.
        eps: RankMe's smoothing of ``p`` (keeps ``log`` finite for zero singular values).

    Example:
        >>> effective_rank(torch.eye(4))  # four orthogonal directions of equal energy
        4.0
    """
    s = torch.linalg.svdvals(_as_float(z))
    p = s / s.sum().clamp_min(torch.finfo(s.dtype).tiny) + eps
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def alignment(z0: Tensor, z1: Tensor, alpha: float = 2.0) -> float:
    """Wang & Isola's alignment ``E_i ||f(x_i) - f(y_i)||^alpha`` over positive pairs.

    ``f`` is L2-normalised, so the value lies in ``[0, 2^alpha]``: 0 when the two views
    embed identically, 4 (alpha 2) when they are antipodal.

    Args:
        z0: Embeddings of the first views ``[N, D]``.
        z1: Embeddings of their positives ``[N, D]`` (row i pairs with row i of ``z0``).
        alpha: Exponent of the distance (the paper's default 2).

    Example:
        >>> alignment(torch.tensor([[1.0, 0.0]]), torch.tensor([[-3.0, 0.0]]))
        4.0
    """
    if z0.shape != z1.shape:
        raise ValueError(f"pairs need equal shapes, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    distance = (_normalised(z0, "z0") - _normalised(z1, "z1")).norm(dim=1)
    return float(distance.pow(alpha).mean())


@torch.no_grad()
def uniformity(z: Tensor, t: float = 2.0) -> float:
    """Wang & Isola's uniformity ``log E_{i<j} exp(-t ||f(x_i) - f(x_j)||^2)``.

    Over the ``N (N - 1) / 2`` distinct pairs of L2-normalised embeddings (``torch.pdist``:
    memory grows as N^2, so pass a batch, not a dataset). 0 when the batch has collapsed to
    one point; more negative is more uniform (about ``-t * 2`` at best for large D).

    Args:
        z: Embeddings ``[N, D]``, ``N >= 2``.
        t: Temperature of the Gaussian potential (the paper's default 2).

    Example:
        >>> uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))  # log exp(-2 * 4)
        -8.0
    """
    x = _normalised(z)
    if x.shape[0] < 2:
        raise ValueError(f"uniformity needs at least two embeddings, got {x.shape[0]}")
    squared = torch.pdist(x, p=2).pow(2)
    return float(squared.mul(-t).exp().mean().log())


def embedding_health(z: Tensor | None = None, pair: Tensor | None = None) -> EmbeddingHealth:
    """Every statistic of this module for one batch.

    Give either ``z`` ``[N, D]`` (alignment is then None) or ``pair`` ``[N, 2, D]``, the
    embeddings of two views of each image: alignment is computed between the views, and
    std, effective rank and uniformity on the first view ``pair[:, 0]`` (the second is
    another sample of the same distribution, so it adds nothing but cost).

    Example:
        >>> embedding_health(torch.randn(512, 16)).std_ratio  # isotropic: ~1
        0.99
    """
    paired: float | None = None
    if pair is None:
        if z is None:
            raise ValueError("give embeddings z [N, D] or two views' embeddings pair [N, 2, D]")
    else:
        if z is not None:
            raise ValueError("give z or pair, not both: with pair, z is its first view")
        if pair.ndim != 3 or pair.shape[1] != 2:
            raise ValueError(
                f"pair must be two views' embeddings [N, 2, D], got {tuple(pair.shape)}"
            )
        z, paired = pair[:, 0], alignment(pair[:, 0], pair[:, 1])
    std = dimension_std(z)
    return EmbeddingHealth(
        std=std,
        std_ratio=std * math.sqrt(z.shape[1]),
        effective_rank=effective_rank(z),
        alignment=paired,
        uniformity=uniformity(z),
    )
