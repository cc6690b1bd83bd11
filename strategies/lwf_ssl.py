"""LwF-SSL: Learning without Forgetting carried to self-supervised learning.

At the start of every experience after the first, a frozen copy of the model (backbone +
projection head) becomes the teacher. On every training batch the student pays

    L = L_ssl + lambda * L_distill(student(x), teacher(x))

on the same augmented views x (``[B, V, D]`` embeddings, B images with V = 2 views):

- ``relational`` (default): the student's pairwise cosine-similarity rows over all N = 2B
  views, softmaxed at ``temperature``, must match the teacher's (KL teacher -> student);
  ``relational-mse`` compares the raw similarity matrices with an MSE.
- ``contrastive``: per view v, student view v of image i must pick the teacher's view v of
  image i among the teacher's view-v embeddings of the batch (the other images are the
  negatives, the same image's other view never is).

``features`` picks what is distilled: the projector output (default) or the backbone
features users keep. ``teacher-bn`` picks the teacher's BatchNorm statistics: ``eval``
(its running statistics from the previous experiences) or ``batch`` (the current batch's,
like the student, so the term starts at 0 on an experience's first step); see
``cl_ssl.teacher``.

How it differs from Co2L's instance-wise relation distillation (Cha et al., ICCV 2021):
Co2L distils softmaxed similarity rows of the current vs. the past model too, but inside
*supervised* (asymmetric SupCon) training, with a replay buffer, different temperatures
for the two models (0.2 vs 0.01) and a cross-entropy. LwF-SSL needs no labels and no
stored data, uses one temperature for both models and a KL divergence (0 exactly when the
structures agree), and can distil backbone features as well as projections.

Defaults (lambda = 1, relational, temperature = 0.2, projections) were chosen on
``digits-periods`` at the demo's budget (20 epochs, batch 128, seed 0), trading the final
SSL loss (plasticity) against its rise on old periods (forgetting, %):

    config                      final SSL loss   SSL-loss forgetting %   kNN-20 forgetting
    naive                       3.331            8.2                     0.007
    relational lambda 0.3 T 0.1 3.388            2.0                     0.007
    relational lambda 1   T 0.1 3.658            0.5                     0.000
    relational lambda 3   T 0.1 3.800            0.7                     0.014
    relational lambda 1   T 0.2 3.427            0.6                     0.000
    relational lambda 1   T 0.05 3.761           0.3                     0.014
    contrastive lambda 1  T 0.1 3.695            0.8                     0.000

(The contrastive row predates the per-view form: it was measured with both views flattened
into one batch, the other view a negative. All rows used ``teacher-bn=eval``.)

T = 0.2 keeps almost all of lambda = 1's protection at a final loss close to naive's;
sharper temperatures or larger weights freeze the student; T = 0.5 flattens the rows until
little is distilled (absolute loss rise 0.232 vs naive's 0.255, final loss 3.305).
Per-period kNN on two-digit periods is near its ceiling (0.98-1.0), so the SSL loss
decides here; re-tune on your own stream with ``--opt``.

Teacher BatchNorm (``teacher-bn``), measured on validation data:

    # TODO(teacher-bn): table "teacher-bn | final SSL loss | SSL-loss forgetting % | kNN"
    # for eval vs batch goes here, with the stream, budget and seed; the default ("eval",
    # today's behaviour) follows it.

Example:
    clssl bench --stream digits-periods --strategy naive,lwf-ssl --opt lwf-ssl.lambda=1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avalanche.core import SupervisedPlugin
from torch import nn

from cl_ssl.losses.distillation import ContrastiveDistillationLoss, RelationalDistillationLoss
from cl_ssl.registry import register_strategy
from cl_ssl.teacher import BN_MODES, Teacher


@dataclass(frozen=True)
class LwFSSLOptions:
    """LwF-SSL options (``--opt lwf-ssl.KEY=VALUE``).

    Attributes:
        lambda_: Weight of the distillation term (``lambda`` on the command line).
        mode: ``relational`` (KL of softmaxed similarity rows), ``relational-mse`` or
            ``contrastive`` (per-view InfoNCE with the teacher's embedding as the positive).
        temperature: Softmax temperature of the distillation term.
        features: ``projections`` (head output) or ``features`` (backbone output).
        teacher_bn: The teacher's BatchNorm statistics: ``eval`` (running) or ``batch``.
    """

    lambda_: float = 1.0
    mode: Literal["relational", "relational-mse", "contrastive"] = "relational"
    temperature: float = 0.2
    features: Literal["projections", "features"] = "projections"
    teacher_bn: Literal["eval", "batch"] = "eval"


@register_strategy("lwf-ssl")
class LwFSSLPlugin(SupervisedPlugin):
    """Distils the previous experience's model into the current one (no stored data)."""

    Options = LwFSSLOptions

    def __init__(self, options: LwFSSLOptions | None = None) -> None:
        super().__init__()
        self.options = options or LwFSSLOptions()
        if self.options.lambda_ < 0:
            raise ValueError(f"lwf-ssl.lambda must be >= 0, got {self.options.lambda_}")
        if self.options.teacher_bn not in BN_MODES:
            raise ValueError(
                f"lwf-ssl.teacher-bn must be 'eval' or 'batch', got {self.options.teacher_bn!r}"
            )
        if self.options.mode == "contrastive":
            self.distill: nn.Module = ContrastiveDistillationLoss(self.options.temperature)
        else:
            mse = self.options.mode == "relational-mse"
            self.distill = RelationalDistillationLoss(
                self.options.temperature, "mse" if mse else "kl"
            )
        self.teacher = Teacher(self.options.teacher_bn)

    def before_training_exp(self, strategy, *args, **kwargs) -> None:
        # The first experience has nothing to remember: it runs exactly like naive.
        self.teacher.refresh(strategy)

    def before_backward(self, strategy, *args, **kwargs) -> None:
        if not self.teacher.active or self.options.lambda_ == 0:
            return
        field = self.options.features
        student = getattr(strategy.mb_output, field)  # [B, V, D]
        teacher = getattr(self.teacher(strategy.mb_x), field)
        strategy.add_loss_term("distill", self.options.lambda_ * self.distill(student, teacher))
