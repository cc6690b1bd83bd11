"""The images every speed row trains on: CIFAR-10 JPEGs when present, else synthetic digits.

:class:`DataSource` is the one place rows get data from, in two storages with the same
items ``(uint8 [3, S, S], label)``:

- ``memory``: a decoded :class:`~cl_ssl.data.images.ImageTensorDataset`;
- ``disk``: a :class:`~cl_ssl.data.files.ImageFileDataset` that decodes each file when a
  loader asks for it (CIFAR-10's own JPEGs, or the synthetic images written as JPEGs to a
  temporary folder, so a disk row exists on every machine).

A row that needs more images than the pool holds cycles through it (indices modulo the
pool): timing does not depend on images being distinct.

Example:
    >>> with DataSource(SpeedConfig(data="synthetic", pool_size=64)) as source:
    ...     train = source.dataset(512, storage="memory")   # 512 items, pool of 64 cycled
    ...     image, label = train[0]                          # uint8 [3, 32, 32]
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cl_ssl.data.files import ImageDataset, ImageFileDataset
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.speed.config import SpeedConfig, Storage


class DataSource:
    """A pool of ``config.pool_size`` images, served in memory or from files.

    Use as a context manager: synthetic files live in a temporary folder removed on exit.
    """

    def __init__(self, config: SpeedConfig) -> None:
        self.config = config
        self.kind = resolve_data(config)
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._memory: ImageTensorDataset | None = None
        self._files: ImageFileDataset | None = None

    def __enter__(self) -> DataSource:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def describe(self) -> str:
        """One phrase for the table header, e.g. ``CIFAR-10 JPEGs (4096 of ...)``."""
        n, size = self.config.pool_size, self.config.image_size
        if self.kind == "cifar10":
            return f"CIFAR-10 JPEGs ({n} from {self.config.data_root}, {size} px)"
        return f"synthetic (scikit-learn digits upscaled to {size} px RGB, {n} images)"

    def dataset(self, n: int, storage: Storage, offset: int = 0) -> ImageDataset:
        """``n`` items starting at pool position ``offset``, cycling through the pool."""
        pool = self.memory() if storage == "memory" else self.files()
        index = (torch.arange(n) + offset) % len(pool)
        return pool.subset(index)

    def memory(self) -> ImageTensorDataset:
        """The pool decoded into memory (decoded once)."""
        if self._memory is None:
            if self.kind == "cifar10":
                self._memory = self.files().load()
            else:
                self._memory = synthetic_images(self.config.pool_size, self.config.image_size)
        return self._memory

    def files(self) -> ImageFileDataset:
        """The pool as image files, decoded on access (synthetic ones written once)."""
        if self._files is None:
            if self.kind == "cifar10":
                self._files = cifar_files(self.config)
            else:
                self._tmp = tempfile.TemporaryDirectory(prefix="clssl-speed-")
                self._files = write_jpegs(self.memory(), Path(self._tmp.name))
        return self._files


def resolve_data(config: SpeedConfig) -> str:
    """``auto`` -> ``cifar10`` when ``config.data_root`` exists, else ``synthetic``."""
    if config.data == "auto":
        return "cifar10" if config.data_root.is_dir() else "synthetic"
    if config.data == "cifar10" and not config.data_root.is_dir():
        raise FileNotFoundError(
            f"--data cifar10 but {config.data_root} is not a folder: pass --data-root "
            "pointing at CIFAR-10's train/ ImageFolder tree, or --data synthetic"
        )
    return config.data


def cifar_files(config: SpeedConfig) -> ImageFileDataset:
    """The first ``pool_size / 10`` JPEGs of every class folder, indexed (not decoded)."""
    from cl_ssl.data.image_folder import load_image_folder

    per_class = math.ceil(config.pool_size / 10)
    files = load_image_folder(config.data_root, config.image_size, max_per_class=per_class)
    return files.subset(torch.arange(min(config.pool_size, len(files))))


def synthetic_images(n: int, size: int, seed: int = 0) -> ImageTensorDataset:
    """``n`` RGB images: scikit-learn's 8 px digits, bilinearly upscaled and tinted per image.

    Digits (not noise) so JPEG sizes and decode costs are those of natural-ish images.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    generator = torch.Generator().manual_seed(seed)
    index = torch.arange(n) % len(digits.images)
    gray = torch.from_numpy(digits.images).float()[index].unsqueeze(1) / 16.0  # [n, 1, 8, 8]
    gray = F.interpolate(gray, size=(size, size), mode="bilinear", align_corners=False)
    tint = 0.4 + 0.6 * torch.rand(n, 3, 1, 1, generator=generator)
    images = (gray * tint * 255).round().clamp(0, 255).to(torch.uint8)
    return ImageTensorDataset(images, torch.from_numpy(digits.target)[index])


def write_jpegs(data: ImageTensorDataset, folder: Path) -> ImageFileDataset:
    """``data`` written as JPEGs (quality 95) into ``folder``; the files as a dataset."""
    paths = []
    for i, image in enumerate(data.images):
        path = folder / f"{i:06d}.jpg"
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(path, quality=95)
        paths.append(str(path))
    return ImageFileDataset(np.asarray(paths), data.labels.clone(), data.image_size)
