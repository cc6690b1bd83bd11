"""BYOL (Grill et al., NeurIPS 2020, https://arxiv.org/abs/2006.07733) from Lightly parts.

The online network (the model: backbone, projector g and predictor q, Lightly's
:class:`~lightly.models.modules.BYOLProjectionHead` and
:class:`~lightly.models.modules.BYOLPredictionHead`) predicts the projections of a *target*
network, a momentum copy of backbone and projector held inside this method (so
``method.state_dict()``, which checkpoints carry, holds it). With p = q(g(f(x))) online,
zt = g_t(f_t(x)) from the target (no gradient) and D(p, z) = -cos(p, z) (Lightly's
:class:`~lightly.loss.NegativeCosineSimilarity`), as in Lightly's BYOL example,

    L = 1/2 * D(p_0, zt_1) + 1/2 * D(p_1, zt_0)

(the paper's ``2 - 2 cos`` summed over both views is the same loss up to an affine map).

After every optimizer step the target moves by an exponential moving average only,
``theta_t <- m * theta_t + (1 - m) * theta`` (Lightly's ``update_momentum``, parameters
only), with BYOL's cosine schedule restarted every experience, as CaSSLe and solo-learn
restart it per task: for the k-th update of an experience of K steps (k = 0 .. K-1),

    m_k = 1 - (1 - m_base) * (cos(pi * k / (K - 1)) + 1) / 2

(Lightly's ``cosine_schedule(k, K, m_base, m_final)``), from ``m_base`` (0.99, solo-learn's
CIFAR setting; the paper's ImageNet one is 0.996) at the first update to ``m_final`` = 1 at
the last. An experience of one step uses ``m_base``.

The target's BatchNorm layers normalise with the statistics of the batch, like the online
network in training (Lightly's example runs both in the same mode), and keep no running
statistics (nothing would read them): the target is a deterministic function of its
weights and the batch, and evaluating never changes it.

Pairs (:meth:`BYOL.loss`): the negative cosine, as for SimSiam (:mod:`cl_ssl.methods.simsiam`).

Distillation keeps the reference code's ratio to the SSL loss. The reference (solo-learn's
and CaSSLe's ``methods/byol.py``: ``byol_loss_func(p1, z2_momentum) + byol_loss_func(p2,
z1_momentum)``) sums ``2 - 2cos`` over both views, L_ref = 4 L + 4; CaSSLe's predictive
distiller (``cassle/distillers/predictive.py``, ``distill_lamb`` 1) adds
``1/2 sum_v (2 - 2 cos(q^v, sg(z_t^v)))``. In this module's units (divided by 4),
:meth:`BYOL.distillation_loss` is

    L_distill = 1/4 * 1/2 * sum_v (2 - 2 cos(q^v, sg(z_t^v))),

so L + L_distill = (L_ref + L_distill_ref) / 4 - 1 and SSL : distillation is 2 : 1 per
cosine, as in the reference. PNR (``byol_pnr.py``, ``negative_lamb`` 0.5 in
``bash_files/continual/cifar/byol_pnr.sh``) pushes up the same distance to the teacher's
other view, in the same units (:meth:`BYOL.pnr_negative`):
``1/4 * 0.5 * 1/2 sum_v (2 - 2 cos(q^v, sg(z^{-,v'})))``.

Augmentations (:meth:`BYOL.augment_config`): BYOL's colour jitter (0.4, 0.4, 0.2, 0.1).
BYOL's blur (p = 1 on one view, 0.1 on the other) and solarisation (0 / 0.2) are
asymmetric, which :class:`~cl_ssl.augment.AugmentConfig` cannot express: blur stays
SimCLR's (p = 0.5 above 64 px, none below) and there is no solarisation.

Example:
    >>> method = BYOL(BYOLOptions(hidden_dim=64, output_dim=32, pred_hidden_dim=64))
    >>> model = SSLModel(backbone, method.make_head(128), method.make_predictor())
    >>> method.setup(model)  # the target: a copy of backbone and projector
    >>> loss = method(model(views), views)  # views [B, 2, 3, S, S]
    >>> method.after_step(model, step=1, total_steps=100)  # EMA update of the target
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from cl_ssl import distributed
from cl_ssl.augment import AugmentConfig
from cl_ssl.methods.base import SSLMethod
from cl_ssl.methods.simsiam import (
    PNR_NEGATIVE_LAMB,
    check_pairs,
    negative_cosine_pair,
    predictive_loss,
    symmetric_negative_cosine,
)
from cl_ssl.models.ssl_model import SSLOutput
from cl_ssl.registry import register_method

# The reference loss (sum over views of 2 - 2cos) is 4 times this module's, plus 4.
REFERENCE_SCALE = 4.0


def byol_augment_config(image_size: int) -> AugmentConfig:
    """BYOL's symmetric augmentation parameters (colour jitter 0.4, 0.4, 0.2, 0.1).

    Also Barlow Twins' and VICReg's, which follow BYOL. Blur stays SimCLR's size rule.
    """
    return replace(
        AugmentConfig.for_image_size(image_size),
        cj_bright=0.4,
        cj_contrast=0.4,
        cj_sat=0.2,
        cj_hue=0.1,
    )


def momentum_at(step: int, total_steps: int, base: float, final: float = 1.0) -> float:
    """BYOL's momentum for the 1-based ``step`` of ``total_steps`` (see the module docstring)."""
    if total_steps <= 1:
        return base
    return cosine_schedule(step - 1, total_steps, base, final)


@dataclass(frozen=True)
class BYOLOptions:
    """BYOL's options: the paper's head sizes and solo-learn's CIFAR momentum.

    Attributes:
        hidden_dim: Projector hidden size (4096).
        output_dim: Projection size (256), also the predictor's input and output size.
        pred_hidden_dim: Predictor hidden size (4096).
        base_momentum: Target momentum at an experience's first step (0.99 for CIFAR;
            the paper uses 0.996 on ImageNet).
        final_momentum: Target momentum at an experience's last step (1).
    """

    hidden_dim: int = 4096
    output_dim: int = 256
    pred_hidden_dim: int = 4096
    base_momentum: float = 0.99
    final_momentum: float = 1.0

    def __post_init__(self) -> None:
        for name in ("base_momentum", "final_momentum"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"byol.{name.replace('_', '-')} must be in [0, 1], got {value}")


@register_method("byol")
class BYOL(SSLMethod):
    """BYOL: online projector + predictor against a momentum target, negative cosine.

    Attributes:
        target_backbone: Momentum copy of the model's backbone (after :meth:`setup`).
        target_head: Momentum copy of the model's projector (after :meth:`setup`).
    """

    Options = BYOLOptions

    def __init__(self, options: BYOLOptions | None = None) -> None:
        super().__init__()
        self.options = options or BYOLOptions()
        self.target_backbone: nn.Module | None = None
        self.target_head: nn.Module | None = None
        self.last_momentum: float | None = None  # of the last EMA update, for logging/tests

    def make_head(self, feature_dim: int) -> nn.Module:
        return BYOLProjectionHead(feature_dim, self.options.hidden_dim, self.options.output_dim)

    def make_predictor(self) -> nn.Module:
        dim = self.options.output_dim
        return BYOLPredictionHead(dim, self.options.pred_hidden_dim, dim)

    def augment_config(self, image_size: int) -> AugmentConfig:
        return byol_augment_config(image_size)

    def setup(self, model: nn.Module) -> None:
        """The target network: copies of ``model.backbone`` and ``model.head``, no gradient."""
        self.target_backbone = _target_copy(model.backbone)
        self.target_head = _target_copy(model.head)

    def target_projections(self, views: Tensor) -> Tensor:
        """The target's projections ``[B, V, D]`` of ``views`` ``[B, V, 3, S, S]``, no gradient."""
        if self.target_backbone is None or self.target_head is None:
            raise RuntimeError("BYOL has no target network yet: call method.setup(model) first")
        if views.ndim != 5:
            raise ValueError(f"BYOL needs the views [B, V, 3, S, S], got {tuple(views.shape)}")
        batch, n_views = views.shape[:2]
        with torch.no_grad():
            # Train mode every time: batch statistics, whatever mode the module was put in.
            self.target_backbone.train()
            self.target_head.train()
            features = self.target_backbone(views.flatten(0, 1))
            return self.target_head(features).view(batch, n_views, -1)

    def loss(self, projections: Tensor) -> Tensor:
        check_pairs("BYOL", projections)
        return negative_cosine_pair(projections)

    def forward(self, output: SSLOutput, views: Tensor | None = None) -> Tensor:
        if views is None:
            raise ValueError("BYOL needs the views for its target network: method(output, views)")
        if output.predictions is None:
            raise ValueError(
                "BYOL needs the predictor's outputs: build the model with method.make_predictor()"
            )
        check_pairs("BYOL", output.predictions, "predictions")
        # Under torchrun the predictions are the global batch's; views are this rank's.
        targets = distributed.gather(self.target_projections(views))
        return symmetric_negative_cosine(output.predictions, targets)

    def distillation_loss(
        self, predicted: Tensor, teacher: Tensor, temperature: float = 0.2
    ) -> Tensor:
        """CaSSLe's predictive term in this loss's units: ``predictive_loss / 4`` (module doc)."""
        return predictive_loss(predicted, teacher) / REFERENCE_SCALE

    def pnr_negative(self, predicted: Tensor, negatives: Tensor) -> Tensor:
        """``byol_pnr.py``'s pseudo-negative term in this loss's units (module docstring)."""
        return PNR_NEGATIVE_LAMB * predictive_loss(predicted, negatives) / REFERENCE_SCALE

    def after_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        """EMA update of the target with the scheduled momentum (``step`` is 1-based)."""
        if self.target_backbone is None or self.target_head is None:
            raise RuntimeError("BYOL has no target network yet: call method.setup(model) first")
        m = momentum_at(step, total_steps, self.options.base_momentum, self.options.final_momentum)
        update_momentum(model.backbone, self.target_backbone, m)
        update_momentum(model.head, self.target_head, m)
        self.last_momentum = m


def _target_copy(module: nn.Module) -> nn.Module:
    target = copy.deepcopy(module).train()
    deactivate_requires_grad(target)
    for layer in target.modules():
        if isinstance(layer, _BatchNorm):
            # Train mode + no tracking: batch statistics, running buffers never written.
            layer.track_running_stats = False
    return target
