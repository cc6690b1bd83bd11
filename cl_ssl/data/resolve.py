"""A dataset by name (registry) or by path (ImageFolder), and harmonised image sizes."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.files import ImageDataset, ImageFileDataset
from cl_ssl.data.image_folder import load_image_folder
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.data.npz import is_npz, load_npz
from cl_ssl.registry import datasets


def load_dataset(name: str, root: Path | None = None) -> LoadedDataset:
    """Registry dataset ``name`` (read from ``root``), a packed ``.npz`` file or an ImageFolder.

    A folder with ``train/`` and ``test/`` sub-folders gives both splits; any other folder
    is one training split of ``<class>/*.jpg``.
    """
    if name in datasets:
        return datasets.get(name)(root)
    if is_npz(name):
        return load_npz(name)
    folder = Path(name)
    if folder.is_dir():
        if (folder / "train").is_dir() and (folder / "test").is_dir():
            return LoadedDataset(
                load_image_folder(folder / "train"), load_image_folder(folder / "test")
            )
        return LoadedDataset(load_image_folder(folder))
    known = ", ".join(datasets.names())
    raise ValueError(
        f"dataset '{name}' is neither a known dataset ({known}) nor a folder: name a registered "
        "dataset, or give an existing folder's path"
    )


def harmonise(dataset: ImageDataset, size: int, channels: int) -> ImageDataset:
    """``dataset`` resized to ``size`` x ``size`` (antialiased) with ``channels`` (1 or 3).

    Grayscale becomes RGB by repetition, so datasets of different kinds can share a stream
    (and a replay buffer). A disk-backed dataset (always RGB) only changes the size it is
    decoded at; nothing is decoded here.
    """
    if isinstance(dataset, ImageFileDataset):
        if channels != 3:
            raise ValueError(f"image files decode to RGB; cannot make {channels}-channel images")
        return dataset if dataset.size == size else dataset.resized(size)
    images = dataset.images
    if images.shape[1] != channels:
        if channels != 3 or images.shape[1] != 1:
            raise ValueError(f"cannot turn {images.shape[1]}-channel images into {channels}")
        images = images.expand(-1, 3, -1, -1)
    if images.shape[-2:] != (size, size):
        chunks = []
        for start in range(0, len(images), 4096):
            chunk = images[start : start + 4096].float()
            chunk = F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True)
            chunks.append(chunk.round_().clamp_(0, 255).to(torch.uint8))
        images = torch.cat(chunks)
    return ImageTensorDataset(
        images.contiguous(), dataset.labels, dataset.label_names, dataset.skipped
    )
