"""Distillation between a student and a frozen teacher embedding of the same batch.

Both losses take index-aligned embeddings ``student [N, D]`` and ``teacher [N, D]`` (N =
every view of every image in the batch, e.g. 2B for SimCLR) and never back-propagate into
the teacher.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from lightly.loss import NTXentLoss
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
        if student.shape != teacher.shape or student.ndim != 2 or student.shape[0] < 2:
            raise ValueError(
                f"student and teacher must both be [N >= 2, D], got {tuple(student.shape)} "
                f"and {tuple(teacher.shape)}"
            )
        s_student = _off_diagonal_similarities(student)
        s_teacher = _off_diagonal_similarities(teacher.detach())
        if self.mode == "mse":
            return F.mse_loss(s_student, s_teacher)
        log_q = F.log_softmax(s_student / self.temperature, dim=1)
        log_p = F.log_softmax(s_teacher / self.temperature, dim=1)
        return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


class ContrastiveDistillationLoss(nn.Module):
    """NT-Xent whose positive for each student embedding is the teacher's embedding of it.

    For student s_i and teacher t_i of the same view of the same image, with cosine
    similarity sim and temperature t (Lightly's :class:`~lightly.loss.NTXentLoss` with
    ``out0 = student``, ``out1 = teacher``):

        l_i = -log( exp(sim(s_i, t_i)/t) / Z_i ),
        Z_i = exp(sim(s_i, t_i)/t) + sum_{k != i} [exp(sim(s_i, t_k)/t) + exp(sim(s_i, s_k)/t)]

    so the other images of the batch, in either model, are the negatives. It is smallest
    when each student embedding sits on its teacher embedding; the teacher is detached.

    Args:
        temperature: NT-Xent temperature.

    Example:
        >>> loss = ContrastiveDistillationLoss(temperature=0.2)
        >>> teacher = torch.randn(16, 32)
        >>> loss(teacher, teacher) < loss(teacher + torch.randn(16, 32), teacher)
        tensor(True)
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.ntxent = NTXentLoss(temperature=temperature)

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        if student.shape != teacher.shape or student.ndim != 2:
            raise ValueError(
                f"student and teacher must both be [N, D], got {tuple(student.shape)} and "
                f"{tuple(teacher.shape)}"
            )
        return self.ntxent(student, teacher.detach())
