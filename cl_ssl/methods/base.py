"""What an SSL method provides to the template: heads, a loss, hooks and augmentation defaults.

A method is an ``nn.Module`` subclass of :class:`SSLMethod`, registered by name with
``@register_method`` and built as ``Method(options)`` from its ``Options`` dataclass
(``--method-opt NAME.KEY=VALUE``). It is the template's criterion: ``method(output, views)``
returns the SSL loss of a step, from the model's :class:`SSLOutput` and, for methods with a
target network of their own (BYOL), the augmented views ``[B, V, 3, S, S]``. Labels are
never passed.

What the protocol offers, and who calls it:

- :meth:`SSLMethod.make_head` (projector) and :meth:`SSLMethod.make_predictor` (BYOL,
  SimSiam; None otherwise): learnable parts, built into the :class:`SSLModel`, so the
  optimizer, checkpoints and the distillation teachers see them like any weight;
- :meth:`SSLMethod.setup` once with the fresh model (BYOL builds its target network from
  it) and :meth:`SSLMethod.after_step` after every optimizer step (BYOL's EMA update), with the
  step within the experience and the experience's number of steps;
- :meth:`SSLMethod.distillation_loss`: CaSSLe's term between a student's predicted
  embeddings and a teacher's, in the form (and with the coefficient) of the reference code
  for this method (github.com/DonkeyShot21/cassle, ``cassle/distillers/*.py``), used by
  CaSSLe and by PNR's regularization term;
- :meth:`SSLMethod.pnr_negative`: PNR's pseudo-negative distance for methods without
  negatives of their own, with the reference's ``negative_lamb`` (github.com/csm9493/PNR,
  ``cassle/distillers/*_pnr.py``);
- :meth:`SSLMethod.parts`: the objectives the method mixes (one, or a mixture's components
  with their slices of the projections and weights), for strategies whose form differs per
  method (PNR's contrastive SimCLR term);
- state that is not a model weight (BYOL's target network) lives in the method module:
  checkpoints carry ``method.state_dict()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from cl_ssl.augment import AugmentConfig
from cl_ssl.methods.distillation import check_distillation_pair, ssl_loss_distillation
from cl_ssl.models.ssl_model import SSLOutput


@dataclass(frozen=True)
class NoMethodOptions:
    """Options of a method that has none."""


class SSLMethod(nn.Module):
    """Base class of self-supervised methods (SimCLR, Barlow Twins, BYOL, ...).

    Subclasses implement :meth:`make_head` and :meth:`loss` (pairs of views), or override
    :meth:`forward` when the loss needs more than the projections (predictions, a target
    network).
    """

    Options: type = NoMethodOptions

    def make_head(self, feature_dim: int) -> nn.Module:
        """Projection head mapping backbone features ``[N, F]`` to the loss space ``[N, D]``."""
        raise NotImplementedError

    def make_predictor(self) -> nn.Module | None:
        """Predictor on top of the projections (BYOL, SimSiam), or None."""
        return None

    def augment_config(self, image_size: int) -> AugmentConfig:
        """Augmentation parameters for inputs of ``image_size`` pixels (SimCLR's by default)."""
        return AugmentConfig.for_image_size(image_size)

    def loss(self, projections: Tensor) -> Tensor:
        """SSL loss of two views' projections ``[B, 2, D]``."""
        raise NotImplementedError

    def forward(self, output: SSLOutput, views: Tensor | None = None) -> Tensor:
        """The step's SSL loss (the template's criterion); ``views`` for target networks."""
        return self.loss(output.projections)

    def distillation_loss(
        self, predicted: Tensor, teacher: Tensor, temperature: float = 0.2
    ) -> Tensor:
        """CaSSLe's term between predicted student and teacher embeddings ``[B, V, D]``.

        In the units of this method's :meth:`loss`, so that SSL and distillation keep the
        reference code's ratio at distillation weight 1. Default: the mean over views v of
        :meth:`loss` on the pair (predicted^v, sg(teacher^v)), the paper's recipe (Barlow
        Twins: ``cassle/distillers/decorrelative.py``). ``temperature`` is for contrastive
        forms (SimCLR's); the others ignore it.
        """
        return ssl_loss_distillation(self.loss, predicted, teacher)

    def pnr_negative(self, predicted: Tensor, negatives: Tensor) -> Tensor:
        """PNR's distance D(p^v, sg(z^{-,v'})) to the pseudo-negatives, to be pushed *up*.

        ``negatives`` ``[B, V, D]`` are already the teacher's embeddings of the other views;
        PNR adds ``-negative_weight * D``. The reference's ``negative_lamb`` is inside D, in
        this method's loss units. Default: the negative cosine averaged over views, weight 1
        (``barlow_pnr.py``: ``simsiam_loss_func``, ``negative_lamb`` 1.0).
        """
        check_distillation_pair(predicted, negatives)
        return -F.cosine_similarity(predicted, negatives.detach(), dim=-1).mean()

    def parts(self) -> tuple[tuple[SSLMethod, slice, float], ...]:
        """``(method, slice of the projections' last dimension, weight)`` per objective.

        A single method is one part: itself, all of it, weight 1. A mixture
        (:class:`~cl_ssl.methods.mixture.MixedMethod`) has one part per component.
        """
        return ((self, slice(None), 1.0),)

    def setup(self, model: nn.Module) -> None:
        """Called once with the freshly built model (BYOL copies it into its target)."""

    def after_step(self, model: nn.Module, step: int, total_steps: int) -> None:
        """Called after every optimizer step (BYOL updates its target network here).

        ``step`` is 1-based, of ``total_steps`` in the current experience.
        """
