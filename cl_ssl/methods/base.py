"""What an SSL method provides to the template: a head, a loss and augmentation defaults."""

from __future__ import annotations

from typing import Protocol

from torch import Tensor, nn

from cl_ssl.augment import AugmentConfig
from cl_ssl.models.ssl_model import SSLOutput


class SSLMethod(Protocol):
    """A self-supervised method, registered by name with ``@register_method``.

    The method is the template's criterion: ``method(output, targets)`` returns the SSL
    loss and ignores ``targets``, which exist only because Avalanche passes them (labels
    are never used for training).
    """

    def make_head(self, feature_dim: int) -> nn.Module:
        """Projection head mapping backbone features to the loss space."""
        ...

    def augment_config(self, image_size: int) -> AugmentConfig:
        """Augmentation parameters for inputs of ``image_size`` pixels."""
        ...

    def loss(self, projections: Tensor) -> Tensor:
        """SSL loss of projections ``[B, V, D]``."""
        ...

    def __call__(self, output: SSLOutput, targets: Tensor | None = None) -> Tensor: ...
