"""Distillation losses used by continual strategies (the maths; plugins only call them)."""

from cl_ssl.losses.distillation import ContrastiveDistillationLoss, RelationalDistillationLoss

__all__ = ["ContrastiveDistillationLoss", "RelationalDistillationLoss"]
