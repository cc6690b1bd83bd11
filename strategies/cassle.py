"""CaSSLe: self-supervised models are continual learners (Fini et al., CVPR 2022).

From the second experience on, a frozen copy of the previous model is the teacher and a
predictor g (MLP) maps the student's projections into the teacher's projection space:

    L = L_ssl + weight * L_distill( g(z_student), z_teacher )

L_distill is the method's, ``method.distillation_loss(p, z_t, temperature)``: each method
declares the reference code's term (``cassle/distillers/*.py``) in its own loss units, so
that SSL and distillation keep the reference's ratio at ``weight`` 1:

- SimCLR: the contrastive form at CaSSLe's own temperature (0.2, not SimCLR's 0.5),
  ``contrastive.py``;
- Barlow Twins: the cross-correlation loss per view, ``decorrelative.py`` (which scales
  it, like the SSL loss, by 0.1);
- BYOL, SimSiam: ``predictive.py``'s 2 - 2cos per view (BYOL: divided by 4, as its SSL
  loss is the reference's divided by 4; SSL : distillation = 2 : 1 per cosine for BYOL,
  1 : 2 for SimSiam, as in the reference);
- VICReg: the invariance MSE only, weighted 25, ``predictive_mse.py``;
- a mixture (``simclr+barlow-twins``): each component's own term on its slice, mixed with
  the method weights.

What follows the paper code (github.com/DonkeyShot21/cassle):

- the predictor is trained by the main optimizer, with the model's settings
  (``cassle/distillers/contrastive.py`` adds it to ``learnable_params``, which
  ``cassle/methods/base.py: configure_optimizers`` turns into parameter groups with the
  base lr and weight decay). Here it joins ``strategy.optimizer`` as one more parameter
  group with group 0's settings, once: Avalanche's ``update_optimizer`` keeps parameters it
  does not find in the model (``remove_params=False``). The predictor persists across
  experiences (the paper reloads it with the previous task's checkpoint);
- SimCLR's term, ``simclr_distill_loss_func`` in ``cassle/losses/simclr.py``, symmetrised
  over (prediction, teacher) as in ``contrastive.py``, with ``distill_temperature`` 0.2 and
  ``distill_lamb`` 1 (the other methods' ``distill_lamb`` lives in their term: VICReg's 25);
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

from dataclasses import dataclass
from typing import Literal

from avalanche.core import SupervisedPlugin
from torch import nn

from cl_ssl.kit.losses.cassle import cassle_predictor, predict_views
from cl_ssl.kit.teacher import Teacher
from cl_ssl.kit.trained_module import TrainedModule
from cl_ssl.registry import register_strategy


@dataclass(frozen=True)
class CaSSLeOptions:
    """CaSSLe options (``--opt cassle.KEY=VALUE``).

    Attributes:
        weight: Weight of the method's distillation term (1; CaSSLe's ``distill_lamb``
            relative to the reference's, which the term carries: 25 for VICReg).
        temperature: Temperature of the contrastive distillation (CaSSLe's
            ``distill_temperature``, 0.2), independent of the SSL method's; used by SimCLR
            (also SimCLR's slice of a mixture), ignored by the other methods.
        hidden_dim: Predictor hidden size; None means twice the projection size.
        teacher_bn: ``batch`` (BatchNorm on batch statistics, as the paper code) or
            ``eval`` (running statistics); see ``cl_ssl.kit.teacher``.
    """

    weight: float = 1.0
    temperature: float = 0.2
    hidden_dim: int | None = None
    teacher_bn: Literal["eval", "batch"] = "batch"

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"cassle.weight must be >= 0, got {self.weight}")
        if self.temperature <= 0:
            raise ValueError(f"cassle.temperature must be > 0, got {self.temperature}")
        if self.hidden_dim is not None and self.hidden_dim < 1:
            raise ValueError(f"cassle.hidden-dim must be >= 1 or none, got {self.hidden_dim}")


@register_strategy("cassle")
class CaSSLePlugin(SupervisedPlugin):
    """Predictive distillation of the previous model (teacher) through a trained predictor."""

    Options = CaSSLeOptions
    # Loss-term weights `clssl evolve` searches (--opt keys; ranges hold the defaults).
    loss_weights = {"weight": (0.0, 2.0)}
    # What it owns in a composed run (cl_ssl.strategy.check_roles): its loss term and
    # predictor (PNR has both inside, lwf-ssl adds "distill" too).
    owns = frozenset({"distill", "predictor"})

    def __init__(self, options: CaSSLeOptions | None = None) -> None:
        super().__init__()
        self.options = options = options or CaSSLeOptions()
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
        term = strategy.method.distillation_loss(predicted, target, self.options.temperature)
        strategy.add_loss_term("distill", self.options.weight * term)

    def state_dict(self) -> dict:
        """The predictor (trained across experiences); the teacher is rebuilt from the model."""
        return self.trained.state_dict()

    def load_state_dict(self, state) -> None:
        self.trained.load_state_dict(state)
