"""In-memory image datasets: decoded uint8 images plus an optional label per image."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

UNLABELED = -1
"""Label value of images without a label; never used as a class by any metric."""


class LabeledImages:
    """What both dataset kinds derive from their ``labels`` tensor (Avalanche reads ``targets``)."""

    labels: Tensor

    @property
    def targets(self) -> list[int]:
        """Labels as a list, the attribute Avalanche's dataset wrappers read."""
        return self.labels.tolist()

    @property
    def is_labeled(self) -> bool:
        """True when every image has a label."""
        return bool(len(self.labels)) and bool((self.labels != UNLABELED).all())


@dataclass
class ImageTensorDataset(LabeledImages, Dataset):
    """Decoded images ``[N, C, H, W]`` (uint8, C = 1 or 3) and labels ``[N]`` (int64).

    Items are ``(image, label)`` tuples, the form Avalanche needs; unlabeled images carry
    :data:`UNLABELED`. ``label_names`` maps a label to a readable class name when known.
    ``skipped`` counts the unreadable files the loader left out (0 for in-memory data); it
    belongs to the loaded source, so :meth:`subset` resets it and parts never count twice.
    """

    images: Tensor
    labels: Tensor
    label_names: tuple[str, ...] = ()
    skipped: int = 0

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be a uint8 tensor [N, C, H, W], got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.images.shape[1] not in (1, 3):
            raise ValueError(f"images need 1 or 3 channels, got {self.images.shape[1]}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}"
            )
        self.labels = self.labels.long()

    @classmethod
    def unlabeled(cls, images: Tensor) -> ImageTensorDataset:
        """A dataset whose images have no labels."""
        return cls(images, torch.full((images.shape[0],), UNLABELED, dtype=torch.long))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])

    @property
    def channels(self) -> int:
        """1 (grayscale) or 3 (RGB)."""
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        """Side of the (square) images."""
        return self.images.shape[-1]

    def subset(self, indices: Tensor) -> ImageTensorDataset:
        """The images at ``indices`` (a view-free copy, so the parent can be freed)."""
        return ImageTensorDataset(
            self.images[indices].clone(), self.labels[indices].clone(), self.label_names
        )
