"""Distillation between a student and a frozen teacher embedding of the same batch.

Both losses take index-aligned embeddings ``student [B, V, D]`` and ``teacher [B, V, D]``
(B images, V views each, e.g. V = 2 for SimCLR) and never back-propagate into the teacher.
The relational loss compares the structure of all N = B*V views at once (it also accepts
flat ``[N, D]``); the contrastive one pairs student view v with teacher view v.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _off_diagonal_similarities(embeddings: Tensor) -> Tensor:
    """Cosine similarities ``[N, N-1]``: each row without its self-similarity."""
    z = F.normalize(embeddings, dim=1)
    similarity = z @ z.T
    n = similarity.shape[0]
    keep = ~torch.eye(n, dtype=torch.bool, device=similarity.device)
    return similarity[keep].view(n, n - 1)


class RelationalDistillationLoss(nn.Module):
    """Keep the student's pairwise similarity structure equal to the teacher's.

    With S the cosine-similarity matrix of a batch's N embeddings, self-similarities
    removed, and temperature t, the ``kl`` form compares row-wise distributions:

        P_i = softmax(S_teacher[i] / t),  Q_i = softmax(S_student[i] / t)
        L = 1/N * sum_i KL(P_i || Q_i)

    and the ``mse`` form compares the matrices directly: L = mean((S_student - S_teacher)^2).
    Inputs ``[B, V, D]`` are flattened to the N = B*V views first.
    Both are 0 exactly when the two similarity structures agree (e.g. teacher == student),
    and positive otherwise. The teacher side is detached.

    Args:
        temperature: Softmax temperature of the ``kl`` form (ignored by ``mse``).
        mode: ``kl`` (default) or ``mse``.

    Example:
        >>> loss = RelationalDistillationLoss(temperature=0.1)
        >>> student, teacher = torch.randn(16, 32), torch.randn(16, 32)
        >>> loss(student, teacher) > 0
        tensor(True)
        >>> loss(teacher, teacher)
        tensor(0.)
    """

    def __init__(self, temperature: float = 0.1, mode: Literal["kl", "mse"] = "kl") -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if mode not in ("kl", "mse"):
            raise ValueError(f"mode must be 'kl' or 'mse', got {mode!r}")
        self.temperature = temperature
        self.mode = mode

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        if student.ndim == 3 and teacher.ndim == 3:
            student, teacher = student.flatten(0, 1), teacher.flatten(0, 1)
        if student.shape != teacher.shape or student.ndim != 2 or student.shape[0] < 2:
            raise ValueError(
                f"student and teacher must both be [N >= 2, D] or [B, V, D], got "
                f"{tuple(student.shape)} and {tuple(teacher.shape)}"
            )
        s_student = _off_diagonal_similarities(student)
        s_teacher = _off_diagonal_similarities(teacher.detach())
        if self.mode == "mse":
            return F.mse_loss(s_student, s_teacher)
        log_q = F.log_softmax(s_student / self.temperature, dim=1)
        log_p = F.log_softmax(s_teacher / self.temperature, dim=1)
        return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


class ContrastiveDistillationLoss(nn.Module):
    """Per-view InfoNCE: each student view must pick its own image among the teacher's.

    For a batch of B images with V views, student s_i^v and teacher t_i^v (image i, view v),
    cosine similarity sim and temperature t:

        l_i^v = -log( exp(sim(s_i^v, t_i^v)/t) / sum_{k=1..B} exp(sim(s_i^v, t_k^v)/t) )
        L = 1/(V*B) * sum_v sum_i l_i^v

    i.e. for each view v a cross-entropy over the B x B logits sim(s^v, t^v)/t with the
    diagonal as targets, averaged over views. The candidates of view v are the teacher's
    embeddings of view v only: the same image's other view is never a negative (flattening
    the views into one batch would make it one), and the V per-view terms are independent.
    It is smallest when each student embedding sits on its teacher embedding (up to the
    temperature's sharpness); the teacher is detached.

    Args:
        temperature: Softmax temperature t.

    Example:
        >>> loss = ContrastiveDistillationLoss(temperature=0.2)
        >>> teacher = torch.randn(8, 2, 32)  # [B, V, D]
        >>> loss(teacher, teacher) < loss(teacher + torch.randn(8, 2, 32), teacher)
        tensor(True)
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        if student.shape != teacher.shape or student.ndim != 3:
            raise ValueError(
                f"student and teacher must both be [B, V, D], got {tuple(student.shape)} and "
                f"{tuple(teacher.shape)}"
            )
        batch, views = student.shape[:2]
        s = F.normalize(student, dim=-1).transpose(0, 1)  # [V, B, D]
        t = F.normalize(teacher.detach(), dim=-1).transpose(0, 1)
        logits = s @ t.transpose(1, 2) / self.temperature  # [V, B, B]: view v vs teacher view v
        targets = torch.arange(batch, device=student.device).repeat(views)
        return F.cross_entropy(logits.reshape(views * batch, batch), targets)
