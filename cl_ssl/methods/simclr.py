"""SimCLR (Chen et al., ICML 2020, https://arxiv.org/abs/2002.05709) from Lightly parts.

Loss: NT-Xent over the 2B projections of a batch of B images, two views each. For the
positive pair (i, j) with cosine similarity s and temperature t,

    l(i, j) = -log( exp(s_ij / t) / sum_{k != i} exp(s_ik / t) ),

averaged over all 2B anchors (Lightly's :class:`~lightly.loss.NTXentLoss`).

Distillation (:meth:`SimCLR.distillation_loss`, CaSSLe) is not NT-Xent between prediction and
teacher but CaSSLe's contrastive form at its own temperature (0.2, ``distill_temperature``),
:func:`cl_ssl.methods.distillation.contrastive_distillation` (``cassle/distillers/contrastive.py``).
PNR treats SimCLR by its contrastive form (``strategies/pnr.py``), not by
:meth:`~cl_ssl.methods.base.SSLMethod.pnr_negative`.

Example:
    >>> method = SimCLR()
    >>> head = method.make_head(feature_dim=128)
    >>> loss = method.loss(torch.randn(8, 2, 64))
"""

from __future__ import annotations

from dataclasses import dataclass

from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import Tensor, nn

from cl_ssl.methods.base import SSLMethod
from cl_ssl.methods.distillation import contrastive_distillation
from cl_ssl.registry import register_method


@dataclass(frozen=True)
class SimCLROptions:
    """SimCLR's options. ``hidden_dim`` None means the backbone's feature size, as in the paper."""

    temperature: float = 0.5
    hidden_dim: int | None = None
    output_dim: int = 128


@register_method("simclr")
class SimCLR(SSLMethod):
    """SimCLR: two-layer MLP head and NT-Xent; the template's criterion."""

    Options = SimCLROptions

    def __init__(self, options: SimCLROptions | None = None) -> None:
        super().__init__()
        self.options = options or SimCLROptions()
        self.ntxent = NTXentLoss(temperature=self.options.temperature)

    def make_head(self, feature_dim: int) -> nn.Module:
        hidden = self.options.hidden_dim or feature_dim
        return SimCLRProjectionHead(feature_dim, hidden, self.options.output_dim)

    def loss(self, projections: Tensor) -> Tensor:
        if projections.ndim != 3 or projections.shape[1] != 2:
            raise ValueError(
                f"SimCLR needs two views per image [B, 2, D], got {tuple(projections.shape)}"
            )
        return self.ntxent(projections[:, 0], projections[:, 1])

    def distillation_loss(
        self, predicted: Tensor, teacher: Tensor, temperature: float = 0.2
    ) -> Tensor:
        """CaSSLe's contrastive distillation at ``temperature`` (not SimCLR's own)."""
        return contrastive_distillation(predicted, teacher, temperature)
