"""CaSSLe: self-supervised models are continual learners (Fini et al., CVPR 2022).

From the second experience on, a frozen copy of the previous model is the teacher and a
predictor g (MLP) maps the student's projections into the teacher's projection space:

    L = L_ssl + weight * L_distill( g(z_student), z_teacher )

For SimCLR, L_distill is CaSSLe's contrastive form with its own temperature (0.2, not
SimCLR's 0.5); every other method uses its own loss between g(z_student) and z_teacher,
``method.distillation_loss`` (Barlow Twins: the cross-correlation loss per view; BYOL and
SimSiam: the negative cosine), as the paper prescribes.

What follows the paper code (github.com/DonkeyShot21/cassle):

- the predictor is trained by the main optimizer, with the model's settings
  (``cassle/distillers/contrastive.py`` adds it to ``learnable_params``, which
  ``cassle/methods/base.py: configure_optimizers`` turns into parameter groups with the
  base lr and weight decay). Here it joins ``strategy.optimizer`` as one more parameter
  group with group 0's settings, once: Avalanche's ``update_optimizer`` keeps parameters it
  does not find in the model (``remove_params=False``). The predictor persists across
  experiences (the paper reloads it with the previous task's checkpoint);
- the distillation term, ``simclr_distill_loss_func`` in ``cassle/losses/simclr.py``,
  symmetrised over (prediction, teacher) as in ``contrastive.py``, with
  ``distill_temperature`` 0.2 and ``distill_lamb`` 1;
- the teacher's BatchNorm uses batch statistics (``teacher_bn="batch"``): the frozen
  encoder/projector are deep copies kept inside the LightningModule
  (``cassle/distillers/base.py``), so Lightning's ``model.train()`` puts them in train mode.

Where it differs: CaSSLe forwards each view separately (per-view BatchNorm statistics in
encoder, projector and predictor); here every network sees a step's B*V views at once, as
the template's student does. The predictor's width is read from the first distillation
step's projections (no probe pass through the student) and its initialisation draws from
its own seed, ``experience_seed(train_seed, k, "cassle")``, not the training stream.

Example:
    clssl bench --stream digits-periods --strategy naive,cassle --opt cassle.temperature=0.2
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from avalanche.core import SupervisedPlugin
from torch import Tensor, nn

from cl_ssl.losses.cassle import (
    cassle_predictor,
    contrastive_distillation,
    predict_views,
)
from cl_ssl.methods.simclr import SimCLR
from cl_ssl.registry import register_strategy
from cl_ssl.teacher import Teacher
from cl_ssl.trained_module import TrainedModule

# Methods with a distillation form of their own: (predicted, teacher, temperature) -> term.
# Any other method falls back to its own loss on (prediction, teacher) pairs.
DISTILLATIONS: dict[type, Callable[[Tensor, Tensor, float], Tensor]] = {
    SimCLR: contrastive_distillation,
}


@dataclass(frozen=True)
class CaSSLeOptions:
    """CaSSLe options (``--opt cassle.KEY=VALUE``).

    Attributes:
        weight: Weight of the distillation term (CaSSLe's ``distill_lamb``, 1).
        temperature: Temperature of the contrastive distillation (CaSSLe's
            ``distill_temperature``, 0.2), independent of the SSL method's; unused by
            methods that fall back to their own loss.
        hidden_dim: Predictor hidden size; None means twice the projection size.
        teacher_bn: ``batch`` (BatchNorm on batch statistics, as the paper code) or
            ``eval`` (running statistics); see ``cl_ssl.teacher``.
    """

    weight: float = 1.0
    temperature: float = 0.2
    hidden_dim: int | None = None
    teacher_bn: Literal["eval", "batch"] = "batch"


@register_strategy("cassle")
class CaSSLePlugin(SupervisedPlugin):
    """Predictive distillation of the previous model (teacher) through a trained predictor."""

    Options = CaSSLeOptions
    # Loss-term weights `clssl evolve` searches (--opt keys; ranges hold the defaults).
    loss_weights = {"weight": (0.0, 2.0)}

    def __init__(self, options: CaSSLeOptions | None = None) -> None:
        super().__init__()
        self.options = options = options or CaSSLeOptions()
        if options.weight < 0:
            raise ValueError(f"cassle.weight must be >= 0, got {options.weight}")
        if options.temperature <= 0:
            raise ValueError(f"cassle.temperature must be > 0, got {options.temperature}")
        if options.hidden_dim is not None and options.hidden_dim < 1:
            raise ValueError(f"cassle.hidden-dim must be >= 1 or none, got {options.hidden_dim}")
        self.teacher = Teacher(options.teacher_bn, option="cassle.teacher-bn")
        self.trained = TrainedModule(
            "cassle", lambda dim: cassle_predictor(dim, options.hidden_dim)
        )

    @property
    def predictor(self) -> nn.Module | None:
        """The predictor g, or None before the first distillation step."""
        return self.trained.module

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        self.teacher.refresh(strategy)  # none on the first experience: it runs like naive
        self.trained.attach(strategy)  # after a restore: back into the optimizer

    def before_backward(self, strategy, *args, **kwargs) -> None:
        if not self.teacher.active or self.options.weight == 0:
            return
        student = strategy.mb_output.projections
        predictor = self.trained.get(strategy, student.shape[-1])
        target = self.teacher(strategy.mb_x).projections
        predicted = predict_views(predictor, student)
        term = self._term(strategy.method, predicted, target)
        strategy.add_loss_term("distill", self.options.weight * term)

    def _term(self, method, predicted: Tensor, target: Tensor) -> Tensor:
        for cls in type(method).__mro__:
            if cls in DISTILLATIONS:
                return DISTILLATIONS[cls](predicted, target, self.options.temperature)
        return method.distillation_loss(predicted, target)

    def state_dict(self) -> dict:
        """The predictor (trained across experiences); the teacher is rebuilt from the model."""
        return self.trained.state_dict()

    def load_state_dict(self, state) -> None:
        self.trained.load_state_dict(state)
