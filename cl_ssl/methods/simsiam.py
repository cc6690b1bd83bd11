"""SimSiam (Chen & He, CVPR 2021, https://arxiv.org/abs/2011.10566) from Lightly parts.

A projector f (three layers, BatchNorm on every one, Lightly's
:class:`~lightly.models.modules.SimSiamProjectionHead`) gives z, a predictor h (two layers,
:class:`~lightly.models.modules.SimSiamPredictionHead`) gives p = h(z). With
D(p, z) = -cos(p, z) (Lightly's :class:`~lightly.loss.NegativeCosineSimilarity`, averaged
over the batch) and sg the stop-gradient,

    L = 1/2 * D(p_0, sg(z_1)) + 1/2 * D(p_1, sg(z_0)).

The stop-gradient on z is what prevents collapse: only the predictor branch is trained to
match the other view.

Pairs (:meth:`SimSiam.loss`, for strategies that apply a method's loss to two given rows
``[B, 2, D]``): ``D(x_0, sg(x_1))``; its value is symmetric, the gradient reaches the first
row only.

Distillation (:meth:`SimSiam.distillation_loss`, CaSSLe) is the reference code's, in value:
CaSSLe's SimSiam loss is this one (``cassle/methods/simsiam.py``: ``simsiam_loss_func(p1, z2)
/ 2 + simsiam_loss_func(p2, z1) / 2``) and its predictive distiller
(``cassle/distillers/predictive.py``, the one for predictor methods; the code has no SimSiam
script) adds, with ``distill_lamb`` 1,

    L_distill = 1/2 * sum_v (2 - 2 cos(q^v, sg(z_t^v))),   q = g(z),

so SSL : distillation is 1 : 2 per cosine. PNR's pseudo-negative term
(:meth:`SimSiam.pnr_negative`): the paper code has no SimSiam variant; it gets BYOL's
(``byol_pnr.py``), ``0.5 * 1/2 sum_v (2 - 2 cos(q^v, sg(z^{-,v'})))``.

Augmentations (:meth:`SimSiam.augment_config`): the paper's (MoCo v2's) colour jitter
(0.4, 0.4, 0.4, 0.1) and crop scale (0.2, 1); blur only above 64 px, as for SimCLR.

Example:
    >>> method = SimSiam(SimSiamOptions(hidden_dim=64, output_dim=64, pred_hidden_dim=16))
    >>> model = SSLModel(backbone, method.make_head(128), method.make_predictor())
    >>> loss = method(model(views))  # views [B, 2, 3, S, S]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch.nn.functional as F
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import SimSiamPredictionHead, SimSiamProjectionHead
from torch import Tensor, nn

from cl_ssl.augment import AugmentConfig
from cl_ssl.methods.base import SSLMethod
from cl_ssl.methods.distillation import check_distillation_pair
from cl_ssl.models.ssl_model import SSLOutput
from cl_ssl.registry import register_method

NEGATIVE_COSINE = NegativeCosineSimilarity(dim=-1)
# PNR's byol_pnr.py weight of its pseudo-negative term (bash_files/continual/cifar/byol_pnr.sh).
PNR_NEGATIVE_LAMB = 0.5


def check_pairs(name: str, tensor: Tensor, what: str = "projections") -> None:
    """Raise unless ``tensor`` is ``[B, 2, D]`` (two views per image)."""
    if tensor.ndim != 3 or tensor.shape[1] != 2:
        raise ValueError(
            f"{name} needs two views per image [B, 2, D] of {what}, got {tuple(tensor.shape)}"
        )


def symmetric_negative_cosine(predictions: Tensor, targets: Tensor) -> Tensor:
    """``1/2 D(p_0, sg(t_1)) + 1/2 D(p_1, sg(t_0))`` for ``[B, 2, D]`` predictions and targets."""
    targets = targets.detach()
    return 0.5 * (
        NEGATIVE_COSINE(predictions[:, 0], targets[:, 1])
        + NEGATIVE_COSINE(predictions[:, 1], targets[:, 0])
    )


def negative_cosine_pair(pair: Tensor) -> Tensor:
    """``D(x_0, sg(x_1))`` for two rows ``[B, 2, D]``: the gradient reaches ``x_0`` only."""
    return NEGATIVE_COSINE(pair[:, 0], pair[:, 1].detach())


def predictive_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """``2 - 2 mean cos(predicted, sg(target))`` over all rows of ``[B, V, D]`` tensors.

    The reference code's ``byol_loss_func`` (``cassle/losses/byol.py``); with the same number
    of rows per view, the mean over rows is the mean over views of the per-view losses, as
    the reference's ``(byol_loss_func(p1, z1) + byol_loss_func(p2, z2)) / 2``.

    Example:
        >>> z = torch.randn(8, 2, 16)
        >>> round(float(predictive_loss(-z, z)), 4)  # opposite directions: the maximum
        4.0
    """
    check_distillation_pair(predicted, target)
    return 2 - 2 * F.cosine_similarity(predicted, target.detach(), dim=-1).mean()


@dataclass(frozen=True)
class SimSiamOptions:
    """SimSiam's options: the paper's sizes (projector 2048-2048-2048, predictor hidden 512).

    Attributes:
        hidden_dim: Projector hidden size.
        output_dim: Projection size (the predictor's input and output size).
        pred_hidden_dim: Predictor bottleneck size (a quarter of ``output_dim`` in the paper).
    """

    hidden_dim: int = 2048
    output_dim: int = 2048
    pred_hidden_dim: int = 512


@register_method("simsiam")
class SimSiam(SSLMethod):
    """SimSiam: projector + predictor, symmetric negative cosine with stop-gradient."""

    Options = SimSiamOptions

    def __init__(self, options: SimSiamOptions | None = None) -> None:
        super().__init__()
        self.options = options or SimSiamOptions()

    def make_head(self, feature_dim: int) -> nn.Module:
        return SimSiamProjectionHead(feature_dim, self.options.hidden_dim, self.options.output_dim)

    def make_predictor(self) -> nn.Module:
        dim = self.options.output_dim
        return SimSiamPredictionHead(dim, self.options.pred_hidden_dim, dim)

    def augment_config(self, image_size: int) -> AugmentConfig:
        return replace(
            AugmentConfig.for_image_size(image_size),
            cj_bright=0.4,
            cj_contrast=0.4,
            cj_sat=0.4,
            cj_hue=0.1,
            min_scale=0.2,
        )

    def loss(self, projections: Tensor) -> Tensor:
        check_pairs("SimSiam", projections)
        return negative_cosine_pair(projections)

    def forward(self, output: SSLOutput, views: Tensor | None = None) -> Tensor:
        if output.predictions is None:
            raise ValueError(
                "SimSiam needs the predictor's outputs: build the model with "
                "method.make_predictor()"
            )
        check_pairs("SimSiam", output.predictions, "predictions")
        return symmetric_negative_cosine(output.predictions, output.projections)

    def distillation_loss(
        self, predicted: Tensor, teacher: Tensor, temperature: float = 0.2
    ) -> Tensor:
        """CaSSLe's predictive term: ``mean_v (2 - 2 cos(p^v, sg(z_t^v)))`` (module docstring)."""
        return predictive_loss(predicted, teacher)

    def pnr_negative(self, predicted: Tensor, negatives: Tensor) -> Tensor:
        """``0.5 * mean_v (2 - 2 cos(p^v, sg(z^{-,v'})))``: ``byol_pnr.py``'s form and weight."""
        return PNR_NEGATIVE_LAMB * predictive_loss(predicted, negatives)
