"""Distillation losses used by continual strategies (the maths; plugins only call them)."""

from cl_ssl.losses.cassle import (
    cassle_predictor,
    contrastive_distillation,
    predict_views,
    ssl_loss_distillation,
)
from cl_ssl.losses.distillation import ContrastiveDistillationLoss, RelationalDistillationLoss

__all__ = [
    "ContrastiveDistillationLoss",
    "RelationalDistillationLoss",
    "cassle_predictor",
    "contrastive_distillation",
    "predict_views",
    "ssl_loss_distillation",
]
