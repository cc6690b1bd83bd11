"""VICReg (Bardes et al., ICLR 2022, https://arxiv.org/abs/2105.04906) from Lightly parts.

Loss on the projections z_0, z_1 ``[B, D]`` of the two views (Lightly's
:class:`~lightly.loss.VICRegLoss`, the authors' code):

    L = lambda * s(z_0, z_1) + mu * (v(z_0) + v(z_1)) / 2 + nu * (c(z_0) + c(z_1)),

- invariance s = mean squared error between the two views' projections;
- variance v(z) = 1/D sum_j max(0, 1 - sqrt(Var_b(z_j) + eps)), hinge on each dimension's
  standard deviation over the batch;
- covariance c(z) = 1/D sum_{i != j} Cov(z)_ij^2, off-diagonal covariance over the batch;

with the paper's lambda = 25, mu = 25, nu = 1. Projector: three linear layers, BatchNorm
and ReLU after the first two (:class:`~lightly.models.modules.VICRegProjectionHead`).

Distillation (:meth:`VICReg.distillation_loss`) is CaSSLe's, the invariance term only, not
the variance and covariance terms (``cassle/distillers/predictive_mse.py``:
``distill_lamb * (invariance_loss(p1, frozen_z1) + invariance_loss(p2, frozen_z2)) / 2``,
``distill_lamb`` 25):

    L_distill = 25 * 1/2 * sum_v MSE(q^v, sg(z_t^v)),   q = g(z).

PNR (``vicreg_pnr.py``, ``negative_lamb`` 23 in ``bash_files/continual/cifar/vicreg_pnr.sh``)
pushes up the same MSE to the teacher's other view (:meth:`VICReg.pnr_negative`):
``23 * 1/2 * sum_v MSE(q^v, sg(z^{-,v'}))``. Both are the reference's in value, next to an
SSL loss with the same invariance weight (25). (The SSL loss itself follows the paper code:
CaSSLe's ``vicreg_loss_func`` sums the two views' variance hinges, mu * (v(z_0) + v(z_1)).)

Augmentations: BYOL's colour jitter (0.4, 0.4, 0.2, 0.1), as the paper follows BYOL; its
asymmetric blur and solarisation cannot be expressed by :class:`~cl_ssl.augment.AugmentConfig`
(see :func:`cl_ssl.methods.byol.byol_augment_config`).

Example:
    >>> method = VICReg(VICRegOptions(hidden_dim=64, output_dim=64))
    >>> head = method.make_head(feature_dim=128)
    >>> loss = method.loss(torch.randn(8, 2, 64))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from lightly.loss import VICRegLoss
from lightly.models.modules.heads import VICRegProjectionHead
from torch import Tensor, nn

from cl_ssl.augment import AugmentConfig
from cl_ssl.methods.base import SSLMethod
from cl_ssl.methods.byol import byol_augment_config
from cl_ssl.methods.distillation import check_distillation_pair
from cl_ssl.methods.simsiam import check_pairs
from cl_ssl.registry import register_method

# The reference code's weights of its distillation and pseudo-negative MSE terms.
DISTILL_LAMB = 25.0  # cassle/distillers/predictive_mse.py, vicreg_pnr.py: --distill_lamb
PNR_NEGATIVE_LAMB = 23.0  # PNR's bash_files/continual/cifar/vicreg_pnr.sh: --negative_lamb


def invariance(predicted: Tensor, target: Tensor) -> Tensor:
    """``MSE(predicted, sg(target))`` over all elements of ``[B, V, D]`` tensors.

    The reference's ``invariance_loss`` (``F.mse_loss``); with equal views, the mean over
    views of the per-view MSEs.
    """
    check_distillation_pair(predicted, target)
    return F.mse_loss(predicted, target.detach())


@dataclass(frozen=True)
class VICRegOptions:
    """VICReg's options.

    Attributes:
        lambda_param: Weight of the invariance term (25).
        mu_param: Weight of the variance term (25).
        nu_param: Weight of the covariance term (1).
        hidden_dim: Projector hidden size (2048, solo-learn's CIFAR setting; 8192 in the
            paper on ImageNet).
        output_dim: Projection size (2048; 8192 in the paper).
        num_layers: Linear layers of the projector (3).
    """

    lambda_param: float = 25.0
    mu_param: float = 25.0
    nu_param: float = 1.0
    hidden_dim: int = 2048
    output_dim: int = 2048
    num_layers: int = 3

    def __post_init__(self) -> None:
        if self.num_layers < 2:
            raise ValueError(f"vicreg.num-layers must be at least 2, got {self.num_layers}")


@register_method("vicreg")
class VICReg(SSLMethod):
    """VICReg: three-layer projector and the variance-invariance-covariance loss."""

    Options = VICRegOptions

    def __init__(self, options: VICRegOptions | None = None) -> None:
        super().__init__()
        self.options = options = options or VICRegOptions()
        self.criterion = VICRegLoss(
            lambda_param=options.lambda_param, mu_param=options.mu_param, nu_param=options.nu_param
        )

    def make_head(self, feature_dim: int) -> nn.Module:
        options = self.options
        return VICRegProjectionHead(
            feature_dim, options.hidden_dim, options.output_dim, options.num_layers
        )

    def augment_config(self, image_size: int) -> AugmentConfig:
        return byol_augment_config(image_size)

    def loss(self, projections: Tensor) -> Tensor:
        check_pairs("VICReg", projections)
        return self.criterion(projections[:, 0], projections[:, 1])

    def distillation_loss(
        self, predicted: Tensor, teacher: Tensor, temperature: float = 0.2
    ) -> Tensor:
        """``25 * mean_v MSE(q^v, sg(z_t^v))``: CaSSLe's invariance-only term (module doc)."""
        return DISTILL_LAMB * invariance(predicted, teacher)

    def pnr_negative(self, predicted: Tensor, negatives: Tensor) -> Tensor:
        """``23 * mean_v MSE(q^v, sg(z^{-,v'}))``: ``vicreg_pnr.py``'s pseudo-negative term."""
        return PNR_NEGATIVE_LAMB * invariance(predicted, negatives)
