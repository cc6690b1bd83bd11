"""PFR: Projected Functional Regularization (Gomez-Villa et al., CVPR-W 2022 CLVision).

Paper: "Continually Learning Self-Supervised Representations with Projected Functional
Regularization", Gomez-Villa, Twardowski, Yu, Bagdanov, van de Weijer (arXiv 2112.15022).
From the second experience on, a frozen copy of the previous model is the teacher, and a
temporal projector g (MLP) maps the student's *backbone features* h_t(x) onto the teacher's
h_{t-1}(x); with S the cosine similarity and sg the stop-gradient,

    L = L_ssl + weight * ( - mean_{i, v} S( g(h_t(x_i^v)), sg(h_{t-1}(x_i^v)) ) ),

the SSL method's loss plus the negative cosine of every view of every image (the paper's
projected functional regularization; plain functional regularization, g = identity, is
what the paper shows costs plasticity). The term is added as ``pfr``.

What follows the paper code (github.com/alviur/CVPR_PFR, ``cassle/distillers/pfr.py``,
built inside CaSSLe's code base):

- the projector: Linear(F, F/2) - BatchNorm - ReLU - Linear(F/2, F) on the backbone's F-d
  features (``distill_predictor``), trained by the main optimizer with the model's settings
  (it joins ``learnable_params``); here one more parameter group of ``strategy.optimizer``
  with group 0's settings, added once, persisted across experiences;
- the term, ``-(cos(p1, f1).mean() + cos(p2, f2).mean()) / 2`` with ``distill_lamb`` 1;
- the teacher's BatchNorm uses batch statistics (``teacher_bn="batch"``), as CaSSLe's
  frozen copies inside the LightningModule do.

Where it differs: the paper code forwards each view separately (per-view BatchNorm
statistics in backbone and projector); here the template's B*V views go through at once.
The projector's width is read from the first regularised step's features and its
initialisation draws from its own seed, ``experience_seed(train_seed, k, "pfr")``, so the
training stream is untouched. The paper reports Barlow Twins; here any method works, since
the term only reads backbone features.

Example:
    clssl bench --stream digits-periods --strategy naive,pfr --opt pfr.weight=1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avalanche.core import SupervisedPlugin
from torch import nn

from cl_ssl.kit.losses.cassle import predict_views
from cl_ssl.kit.losses.pfr import pfr_projector, projected_functional_regularization
from cl_ssl.kit.teacher import Teacher
from cl_ssl.kit.trained_module import TrainedModule
from cl_ssl.registry import register_strategy


@dataclass(frozen=True)
class PFROptions:
    """PFR options (``--opt pfr.KEY=VALUE``).

    Attributes:
        weight: Weight of the regularization term (the paper code's ``distill_lamb``, 1).
        hidden_dim: Projector hidden size; None means half the backbone's feature size.
        teacher_bn: ``batch`` (BatchNorm on batch statistics, as the paper code) or
            ``eval`` (running statistics); see ``cl_ssl.kit.teacher``.
    """

    weight: float = 1.0
    hidden_dim: int | None = None
    teacher_bn: Literal["eval", "batch"] = "batch"

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"pfr.weight must be >= 0, got {self.weight}")
        if self.hidden_dim is not None and self.hidden_dim < 1:
            raise ValueError(f"pfr.hidden-dim must be >= 1 or none, got {self.hidden_dim}")


@register_strategy("pfr")
class PFRPlugin(SupervisedPlugin):
    """Backbone features regularised towards the previous model's through a learned projector."""

    Options = PFROptions
    # Loss-term weights `clssl evolve` searches (--opt keys; ranges hold the defaults).
    loss_weights = {"weight": (0.0, 2.0)}
    # What it owns in a composed run (cl_ssl.strategy.check_roles): its loss term.
    owns = frozenset({"pfr"})

    def __init__(self, options: PFROptions | None = None) -> None:
        super().__init__()
        self.options = options = options or PFROptions()
        self.teacher = Teacher(options.teacher_bn, option="pfr.teacher-bn")
        self.trained = TrainedModule("pfr", lambda dim: pfr_projector(dim, options.hidden_dim))

    @property
    def projector(self) -> nn.Module | None:
        """The projector, or None before the first regularised step."""
        return self.trained.module

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        self.teacher.refresh(strategy)  # none on the first experience: it runs like naive
        self.trained.attach(strategy)  # after a restore: back into the optimizer

    def before_backward(self, strategy, *args, **kwargs) -> None:
        if not self.teacher.active or self.options.weight == 0:
            return
        student = strategy.mb_output.features  # [B, V, F]
        projector = self.trained.get(strategy, student.shape[-1])
        target = self.teacher(strategy.mb_x).features
        projected = predict_views(projector, student)
        term = projected_functional_regularization(projected, target)
        strategy.add_loss_term("pfr", self.options.weight * term)

    def state_dict(self) -> dict:
        """The projector (trained across experiences); the teacher is rebuilt from the model."""
        return self.trained.state_dict()

    def load_state_dict(self, state) -> None:
        self.trained.load_state_dict(state)
