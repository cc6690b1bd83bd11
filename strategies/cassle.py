"""CaSSLe: self-supervised models are continual learners (Fini et al., CVPR 2022).

From the second experience on, a frozen copy of the previous model is the teacher and a
predictor g (MLP) maps the student's projections into the teacher's projection space. The
SSL loss itself is the distillation term:

    L = L_ssl + weight * mean_v L_ssl( g(z_student^v), z_teacher^v )

(see ``cl_ssl.losses.cassle``). The predictor persists across experiences and is trained
with its own optimizer of the strategy's type and learning rate, stepped with the model's:
Avalanche rebuilds the model optimizer from the model's parameters at every experience, and
the predictor is not part of the embedding users keep.

Example:
    clssl bench --stream digits-periods --strategy naive,cassle
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from cl_ssl.losses.cassle import cassle_distillation, cassle_predictor
from cl_ssl.models.ssl_model import frozen_copy
from cl_ssl.registry import register_strategy


@dataclass(frozen=True)
class CaSSLeOptions:
    """CaSSLe options (``--opt cassle.KEY=VALUE``).

    Attributes:
        weight: Weight of the distillation term (CaSSLe uses 1).
        hidden_dim: Predictor hidden size; None means twice the projection size.
    """

    weight: float = 1.0
    hidden_dim: int | None = None


@register_strategy("cassle")
class CaSSLePlugin(SupervisedPlugin):
    """Predictive distillation of the previous model through the SSL loss."""

    Options = CaSSLeOptions

    def __init__(self, options: CaSSLeOptions | None = None) -> None:
        super().__init__()
        self.options = options or CaSSLeOptions()
        if self.options.weight < 0:
            raise ValueError(f"cassle.weight must be >= 0, got {self.options.weight}")
        self.teacher: nn.Module | None = None
        self.predictor: nn.Module | None = None
        self.predictor_optimizer: torch.optim.Optimizer | None = None
        self._trained_experiences = 0

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        if not self._trained_experiences:
            return  # nothing to distil yet: the first experience runs like naive
        self.teacher = frozen_copy(strategy.model)
        if self.predictor is None:
            dim = strategy.model.head(
                torch.zeros(2, strategy.model.feature_dim, device=strategy.device)
            ).shape[1]
            self.predictor = cassle_predictor(dim, self.options.hidden_dim).to(strategy.device)
            group = strategy.optimizer.param_groups[0]
            self.predictor_optimizer = type(strategy.optimizer)(
                self.predictor.parameters(), lr=group["lr"]
            )
        self.predictor.train()

    def after_training_exp(self, strategy, *args, **kwargs) -> None:
        self._trained_experiences += 1

    def before_backward(self, strategy, *args, **kwargs) -> None:
        if self.teacher is None:
            return
        self.predictor_optimizer.zero_grad()
        with torch.no_grad():
            teacher = self.teacher(strategy.mb_x).projections
        term = cassle_distillation(
            strategy.method.loss, self.predictor, strategy.mb_output.projections, teacher
        )
        strategy.add_loss_term("distill", self.options.weight * term)

    def after_update(self, strategy, *args, **kwargs) -> None:
        if self.teacher is not None:
            self.predictor_optimizer.step()
