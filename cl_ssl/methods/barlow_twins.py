"""Barlow Twins (Zbontar et al., ICML 2021, https://arxiv.org/abs/2103.03230) from Lightly parts.

Loss: with z_0, z_1 the projections ``[B, D]`` of the two views, each standardised along
the batch (zero mean, unit biased variance per dimension: Lightly normalises with
``F.batch_norm`` in training mode, without affine parameters or running statistics), the
cross-correlation C = z_0^T z_1 / B ``[D, D]`` and

    L = sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2

(Lightly's :class:`~lightly.loss.BarlowTwinsLoss`, lambda = 5e-3 as in the paper). The
first term makes the two views' embeddings agree, the second decorrelates their dimensions.
Projector: three linear layers, BatchNorm and ReLU after the first two
(:class:`~lightly.models.modules.BarlowTwinsProjectionHead`).

Distillation (CaSSLe) is the base class's: this loss between the prediction q^v = g(z^v) and
the (detached) teacher z_t^v of every view, averaged over views, as CaSSLe's decorrelative
distiller (``cassle/distillers/decorrelative.py``, ``distill_lamb`` 1). The reference scales
both its SSL loss and this term by ``scale_loss`` 0.1 (``bash_files/continual/cifar/
barlow_distill.sh``, ``distill_scale_loss`` 0.1); Lightly's loss has no scale, so the
reference objective is this one times 0.1, term by term.

PNR (``barlow_pnr.py``, ``negative_lamb`` 1.0 in ``bash_files/continual/cifar/barlow_pnr.sh``)
pushes up the negative cosine to the teacher's other view, ``simsiam_loss_func`` averaged over
views, unscaled; in this loss's units (:meth:`BarlowTwins.pnr_negative`)

    D = 1 / 0.1 * 1.0 * 1/2 sum_v -cos(q^v, sg(z^{-,v'})),

so the PNR objective is the reference's times 10.

Augmentations: BYOL's colour jitter (0.4, 0.4, 0.2, 0.1), as the paper uses BYOL's
pipeline; its asymmetric blur (p = 1 / 0.1) and solarisation (0 / 0.2) cannot be expressed
by :class:`~cl_ssl.augment.AugmentConfig`, so blur stays SimCLR's size rule (see
:func:`cl_ssl.methods.byol.byol_augment_config`).

Example:
    >>> method = BarlowTwins(BarlowTwinsOptions(hidden_dim=64, output_dim=64))
    >>> head = method.make_head(feature_dim=128)
    >>> loss = method.loss(torch.randn(8, 2, 64))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from lightly.loss import BarlowTwinsLoss
from lightly.models.modules import BarlowTwinsProjectionHead
from torch import Tensor, nn

from cl_ssl.augment import AugmentConfig
from cl_ssl.methods.base import SSLMethod
from cl_ssl.methods.byol import byol_augment_config
from cl_ssl.methods.distillation import check_distillation_pair
from cl_ssl.methods.simsiam import check_pairs
from cl_ssl.registry import register_method

# The reference scripts' scale_loss (SSL and distillation): its losses are 0.1 times Lightly's.
REFERENCE_SCALE_LOSS = 0.1
PNR_NEGATIVE_LAMB = 1.0  # PNR's bash_files/continual/cifar/barlow_pnr.sh: --negative_lamb


@dataclass(frozen=True)
class BarlowTwinsOptions:
    """Barlow Twins' options.

    Attributes:
        lambda_param: Weight of the redundancy-reduction (off-diagonal) term, 5e-3.
        hidden_dim: Projector hidden size (2048, solo-learn's CIFAR setting; 8192 in the
            paper on ImageNet).
        output_dim: Projection size (2048; 8192 in the paper).
    """

    lambda_param: float = 5e-3
    hidden_dim: int = 2048
    output_dim: int = 2048


@register_method("barlow-twins")
class BarlowTwins(SSLMethod):
    """Barlow Twins: three-layer projector and the cross-correlation loss."""

    Options = BarlowTwinsOptions

    def __init__(self, options: BarlowTwinsOptions | None = None) -> None:
        super().__init__()
        self.options = options or BarlowTwinsOptions()
        self.criterion = BarlowTwinsLoss(lambda_param=self.options.lambda_param)

    def make_head(self, feature_dim: int) -> nn.Module:
        return BarlowTwinsProjectionHead(
            feature_dim, self.options.hidden_dim, self.options.output_dim
        )

    def augment_config(self, image_size: int) -> AugmentConfig:
        return byol_augment_config(image_size)

    def loss(self, projections: Tensor) -> Tensor:
        check_pairs("Barlow Twins", projections)
        return self.criterion(projections[:, 0], projections[:, 1])

    def pnr_negative(self, predicted: Tensor, negatives: Tensor) -> Tensor:
        """``barlow_pnr.py``'s negative cosine (weight 1.0) in this loss's units: times 10."""
        check_distillation_pair(predicted, negatives)
        cosine = F.cosine_similarity(predicted, negatives.detach(), dim=-1).mean()
        return -PNR_NEGATIVE_LAMB * cosine / REFERENCE_SCALE_LOSS
