"""scikit-learn's bundled digits (1,797 8x8 grayscale images): needs no download."""

from __future__ import annotations

from pathlib import Path

import torch

from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.registry import register_dataset


@register_dataset("digits")
def load_digits_dataset(root: Path | None = None) -> LoadedDataset:
    """All 1,797 digits as uint8 ``[N, 1, 8, 8]`` (0-16 scaled to 0-255), labels 0-9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).mul(255.0 / 16.0).round().to(torch.uint8)
    return LoadedDataset(
        ImageTensorDataset(
            images.unsqueeze(1),
            torch.from_numpy(bunch.target),
            tuple(str(c) for c in bunch.target_names),
        )
    )
