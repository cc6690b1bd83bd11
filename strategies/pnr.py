"""PNR: Pseudo-Negative Regularization (Cha, Cho and Moon, ICML 2024).

Paper: "Regularizing with Pseudo-Negatives for Continual Self-Supervised Learning"
(arXiv 2306.05101, first titled Sy-CON). From the second experience on, a frozen copy of the
previous model is the teacher (projections z^-), and a predictor g (CaSSLe's MLP) maps the
student's projections z to p = g(z), as in CaSSLe. A *pseudo-negative* is an embedding from
the other model that the anchor must not be confused with. The formulas of each term are in
``cl_ssl.kit.losses.pnr``; the objective per method (per component of a mixture such as
``simclr+barlow-twins``, on its slice of the projections, times its mixing weight:
``method.parts()``):

SimCLR (the paper's InfoNCE form, symmetric pseudo-negatives)

    L = L_ssl^PNR(z, z^-; t_ssl) + weight * L_reg^PNR(p, z^-, z; temperature)

L_ssl^PNR is NT-Xent with the teacher's embeddings of the other views as extra negatives;
L_reg^PNR is CaSSLe's predicted-vs-teacher InfoNCE with the current model's embeddings of
the other views as extra negatives. The template always pays NT-Xent (its ``ssl`` term), so
PNR adds exactly the rest: ``pnr_ssl`` = L_ssl^PNR - NT-Xent = mean_a log(1 + S_a^-/S_a)
(what the pseudo-negatives add to every anchor's denominator) and ``pnr_reg`` = weight *
L_reg^PNR; ``ssl + pnr_ssl`` is L_ssl^PNR (the paper code switches SimCLR's own loss off
with ``--pnr_loss`` and computes both terms in one function).

Every other method (Barlow Twins, BYOL, SimSiam, VICReg: no negatives of their own)

    L = L_ssl + weight * D_distill(p^v, z^{-,v}) - negative_weight * D(p^v, sg(z^{-,v'})),

added as ``pnr_reg`` (the method's ``distillation_loss``, CaSSLe's term) and
``pnr_negative``: the pseudo-negative of view v is the teacher's embedding of the *other
augmentation of the same image* v', used in the regularization term only. D is by default
the method's own (``negative=auto``, ``method.pnr_negative``), the paper code's distance
*with its* ``negative_lamb``, in the method's loss units, so ``negative_weight`` 1 is the
reference (``cassle/distillers/*_pnr.py``, ``bash_files/continual/cifar/*_pnr.sh``):

========  ==========================================  ===================================
method    D_distill (``weight`` 1)                     D (``negative_weight`` 1)
========  ==========================================  ===================================
Barlow    cross-correlation loss per view (0.1 x this  10 * -cos (``simsiam_loss_func``
          in the reference, as its SSL loss)           with ``negative_lamb`` 1.0, / 0.1)
BYOL      (2 - 2cos) / 4 (``byol_loss_func``; the      0.5 * (2 - 2cos) / 4
          reference's SSL loss is 4 L_ssl + 4)         (``negative_lamb`` 0.5)
VICReg    25 * MSE (``distill_lamb`` 25)               23 * MSE (``negative_lamb`` 23)
SimSiam   2 - 2cos (CaSSLe's predictive distiller)     0.5 * (2 - 2cos) (no SimSiam variant
                                                       in the paper code: BYOL's)
========  ==========================================  ===================================

Every distance is averaged over views, as in the paper code. ``negative=cosine`` (negative
cosine), ``mse`` (mean squared error) or ``method`` (the method's ``distillation_loss``: only
for methods whose distillation loss is a distance, e.g. BYOL's and SimSiam's; Barlow Twins'
contains batch-statistics terms that must not be pushed up) replace D by that distance,
weighted by ``negative_weight`` alone.

What follows the paper code (github.com/csm9493/PNR):

- ``cassle/losses/pnr.py: simclr_moco_loss_func`` for both SimCLR terms: all 2B views are
  anchors (the code's symmetrised call averages two equal values), teacher detached,
  gradients through z in both terms; the regularization term leaves its positive out of its
  own denominator; no weight on L_reg (``distill_lamb`` is unused there): ``weight`` 1;
- ``barlow_pnr.py``, ``byol_pnr.py``, ``vicreg_pnr.py`` for the other methods, value for
  value up to each method's constant unit factor (the table); the positive and negative
  terms averaged over both views, as there;
- the predictor (Linear - BatchNorm - ReLU - Linear, projection size back to projection
  size) trained by the main optimizer with the model's settings (one more parameter group of
  ``strategy.optimizer`` with group 0's settings, added once, persisted across experiences);
  the teacher's BatchNorm on batch statistics (``teacher_bn="batch"``), both as in CaSSLe's
  code base, on which PNR's is built.

Where it differs: the paper code uses one temperature (``distill_temperature`` 0.2) for both
SimCLR terms and sets SimCLR's to the same 0.2; here L_ssl^PNR keeps the SimCLR method's own
temperature (``method.options.temperature``, so the SSL term stays NT-Xent's extension
across experiences) and ``temperature`` (0.2) is L_reg's. Every network sees a step's B*V
views at once (the paper code forwards views separately: per-view BatchNorm statistics).
The predictor's hidden size is twice the projection size (the paper code: 2048), its width
is read from the first regularised step and its initialisation draws from
``experience_seed(train_seed, k, "pnr")``, not the training stream. MoCo's queue form
is not implemented (there is no MoCo method here). The formulas are taken from, and tested
against, the paper code; the paper's equation numbers are not cited.

Example:
    clssl bench --stream digits-periods --strategy naive,cassle,pnr --opt pnr.temperature=0.2
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from avalanche.core import SupervisedPlugin
from torch import Tensor, nn

from cl_ssl.kit.losses.cassle import cassle_predictor, predict_views
from cl_ssl.kit.losses.pnr import (
    mean_squared_error,
    negative_cosine,
    pnr_contrastive_regularization,
    pnr_ssl_excess,
    pseudo_negative_regularization,
)
from cl_ssl.kit.teacher import Teacher
from cl_ssl.kit.trained_module import TrainedModule
from cl_ssl.methods.base import SSLMethod
from cl_ssl.methods.simclr import SimCLR
from cl_ssl.registry import register_strategy

# The non-contrastive pseudo-negative distances D by name; ``auto`` is the method's
# ``pnr_negative``, ``method`` its ``distillation_loss``.
DISTANCES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "cosine": negative_cosine,
    "mse": mean_squared_error,
}


@dataclass(frozen=True)
class PNROptions:
    """PNR options (``--opt pnr.KEY=VALUE``).

    Attributes:
        weight: Weight of the regularization term (1: the paper code's SimCLR total; for the
            other methods relative to ``distill_lamb``, which their ``distillation_loss``
            carries: 25 for VICReg).
        negative_weight: Weight of the non-contrastive pseudo-negative term; with
            ``negative=auto``, relative to the paper code's ``negative_lamb``, which the
            method's ``pnr_negative`` carries (Barlow Twins 1.0, BYOL 0.5, VICReg 23):
            1 is the reference. Unused for SimCLR.
        negative: The non-contrastive distance D pushed up: ``auto`` (the method's
            ``pnr_negative``, the paper code's per method), ``cosine`` (negative cosine),
            ``mse`` (mean squared error) or ``method`` (the method's
            ``distillation_loss``); unused for SimCLR.
        temperature: Temperature of SimCLR's regularization term (``distill_temperature``,
            0.2); the SSL term uses SimCLR's own.
        hidden_dim: Predictor hidden size; None means twice the projection size.
        teacher_bn: ``batch`` (BatchNorm on batch statistics, as the paper code) or
            ``eval`` (running statistics); see ``cl_ssl.kit.teacher``.
    """

    weight: float = 1.0
    negative_weight: float = 1.0
    negative: Literal["auto", "cosine", "mse", "method"] = "auto"
    temperature: float = 0.2
    hidden_dim: int | None = None
    teacher_bn: Literal["eval", "batch"] = "batch"

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"pnr.weight must be >= 0, got {self.weight}")
        if self.negative_weight < 0:
            raise ValueError(f"pnr.negative-weight must be >= 0, got {self.negative_weight}")
        if self.negative not in (*DISTANCES, "auto", "method"):
            raise ValueError(
                f"pnr.negative must be 'auto', 'cosine', 'mse' or 'method', got {self.negative!r}"
            )
        if self.temperature <= 0:
            raise ValueError(f"pnr.temperature must be > 0, got {self.temperature}")
        if self.hidden_dim is not None and self.hidden_dim < 1:
            raise ValueError(f"pnr.hidden-dim must be >= 1 or none, got {self.hidden_dim}")


@register_strategy("pnr")
class PNRPlugin(SupervisedPlugin):
    """The previous model's embeddings as pseudo-negatives, in the SSL and distillation terms."""

    Options = PNROptions
    # Loss-term weights `clssl evolve` searches (--opt keys; ranges hold the defaults).
    loss_weights = {"weight": (0.0, 2.0), "negative-weight": (0.0, 2.0)}
    # What it owns in a composed run (cl_ssl.strategy.check_roles): its loss terms and
    # CaSSLe's predictor (pnr_reg is CaSSLe's term with pseudo-negatives).
    owns = frozenset({"pnr_ssl", "pnr_reg", "pnr_negative", "predictor"})

    def __init__(self, options: PNROptions | None = None) -> None:
        super().__init__()
        self.options = options = options or PNROptions()
        self.teacher = Teacher(options.teacher_bn, option="pnr.teacher-bn")
        self.trained = TrainedModule("pnr", lambda dim: cassle_predictor(dim, options.hidden_dim))

    @property
    def predictor(self) -> nn.Module | None:
        """The predictor g, or None before the first regularised step."""
        return self.trained.module

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        self.teacher.refresh(strategy)  # none on the first experience: it runs like naive
        self.trained.attach(strategy)  # after a restore: back into the optimizer

    def before_backward(self, strategy, *args, **kwargs) -> None:
        if not self.teacher.active:
            return
        student = strategy.mb_output.projections  # [B, V, D]
        target = self.teacher(strategy.mb_x).projections

        @functools.cache
        def predicted() -> Tensor:  # the predictor only when a term needs it
            return predict_views(self.trained.get(strategy, student.shape[-1]), student)

        terms: dict[str, Tensor] = {}
        for method, cols, mix in strategy.method.parts():
            if isinstance(method, SimCLR):
                part = self._contrastive(method, student, target, predicted, cols)
            else:
                part = self._non_contrastive(method, target, predicted, cols)
            for name, term in part.items():
                terms[name] = terms[name] + mix * term if name in terms else mix * term
        for name, term in terms.items():
            strategy.add_loss_term(name, term)

    def _contrastive(
        self,
        method: SimCLR,
        student: Tensor,
        target: Tensor,
        predicted: Callable[[], Tensor],
        cols: slice,
    ) -> dict[str, Tensor]:
        z, z_prev = student[..., cols], target[..., cols]
        # The template already paid NT-Xent: add what the pseudo-negatives add to it.
        terms = {"pnr_ssl": pnr_ssl_excess(z, z_prev, method.options.temperature)}
        if self.options.weight != 0:
            p = predicted()[..., cols]
            reg = pnr_contrastive_regularization(p, z_prev, z, self.options.temperature)
            terms["pnr_reg"] = self.options.weight * reg
        return terms

    def _non_contrastive(
        self, method: SSLMethod, target: Tensor, predicted: Callable[[], Tensor], cols: slice
    ) -> dict[str, Tensor]:
        options = self.options
        if options.weight == 0 and options.negative_weight == 0:
            return {}
        p, z_prev = predicted()[..., cols], target[..., cols]
        if options.negative == "auto":
            distance = method.pnr_negative
        elif options.negative == "method":
            distance = method.distillation_loss
        else:
            distance = DISTANCES[options.negative]
        negative = pseudo_negative_regularization(p, z_prev, distance)
        return {
            "pnr_reg": options.weight * method.distillation_loss(p, z_prev),
            "pnr_negative": options.negative_weight * negative,
        }

    def state_dict(self) -> dict:
        """The predictor (trained across experiences); the teacher is rebuilt from the model."""
        return self.trained.state_dict()

    def load_state_dict(self, state) -> None:
        self.trained.load_state_dict(state)
