"""Distillation losses used by continual strategies (the maths; plugins only call them).

The per-method distillation forms (CaSSLe's contrastive and generic terms) belong to the
methods: :mod:`cl_ssl.methods.distillation`.
"""

from cl_ssl.kit.losses.cassle import cassle_predictor, predict_views
from cl_ssl.kit.losses.distillation import ContrastiveDistillationLoss, RelationalDistillationLoss

__all__ = [
    "ContrastiveDistillationLoss",
    "RelationalDistillationLoss",
    "cassle_predictor",
    "predict_views",
]
