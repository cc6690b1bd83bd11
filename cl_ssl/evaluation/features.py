"""Frozen backbone features of a dataset: batched, no gradient, one deterministic view."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cl_ssl.augment import TwoViewAugment
from cl_ssl.data.files import ImageDataset, image_batches
from cl_ssl.data.images import UNLABELED


@dataclass
class FeatureSet:
    """Backbone features ``[N, F]`` and their labels ``[N]``, on one device (the CPU by default)."""

    features: Tensor
    labels: Tensor

    @property
    def is_labeled(self) -> bool:
        """True when every image has a label, so accuracies can be computed."""
        return bool(len(self.labels)) and bool((self.labels != UNLABELED).all())


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    augment: TwoViewAugment,
    dataset: ImageDataset,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    workers: int = 0,
    keep: torch.device | str = "cpu",
) -> FeatureSet:
    """Features of every image of ``dataset`` through ``augment.eval_view`` (resize, normalise).

    The backbone runs in eval mode (BatchNorm uses its running statistics) and its mode is
    restored afterwards. Features and labels are gathered on ``keep``.

    Example:
        >>> test = extract_features(model.backbone, augment, stream.experiences[0].test)
        >>> test.features.shape  # [N, F]
    """
    was_training = backbone.training
    backbone.eval()
    chunks = []
    for images in image_batches(dataset, batch_size, workers):
        chunks.append(backbone(augment.eval_view(images.to(device))).float().to(keep))
    backbone.train(was_training)
    features = torch.cat(chunks) if chunks else torch.zeros(0, 0, device=keep)
    return FeatureSet(features, dataset.labels.clone().to(keep))
