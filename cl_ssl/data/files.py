"""Disk-backed image datasets: an index of files, decoded on demand.

A folder tree or a frame manifest becomes an :class:`ImageFileDataset`: paths and labels,
nothing decoded. Caps, class selections and splits are taken on the index (``subset``), so
``--max-images 2000`` of a 150k-frame period decodes 2,000 files, and peak memory does not
grow with the number of images. Items are decoded when a DataLoader (with workers when
``TrainConfig.workers`` says so) asks for them, by :func:`decode_file`, the one decoder the
in-memory path (:meth:`ImageFileDataset.load`) uses too, so both give identical pixels.

Why PIL and not a new dependency: on this 2-core CPU (one thread, ``examples/
decode_speed.py``) PIL decodes and resizes a 32 px CIFAR-10 JPEG at ~9,000 images/s and
torchvision's ``decode_jpeg`` at ~37,000 (~55,000 batched), while the small ResNet trains
at ~450 images/s: decoding is not the bottleneck, and PIL reads every format the folders
hold (PNG, WebP, ...) and decodes large JPEG frames at reduced scale (``Image.draft``).
When a GPU step outruns the workers, torchvision's (or nvJPEG's) decoder is the next step.
See docs/performance.md.

Example:
    >>> data = index_image_folder(Path("cifar10/train"), size=32)
    >>> image, label = data[0]            # decoded now: uint8 [3, 32, 32]
    >>> small = data.subset(torch.arange(100))
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from cl_ssl.data.images import ImageTensorDataset, LabeledImages

UNREADABLE = (OSError, UnidentifiedImageError, ValueError)
"""What PIL raises for a file that is not a readable image (missing, truncated, text)."""


class TooManyBadImagesError(ValueError):
    """More unreadable images than the allowed share, or none readable at all."""


class UnreadableImageError(OSError):
    """An indexed file that passed the header check but does not decode (e.g. truncated)."""


def decode_file(path: str | Path, size: int) -> np.ndarray:
    """``path`` decoded to RGB and resized to ``size`` x ``size``: uint8 ``[S, S, 3]``.

    JPEGs at least twice the target size are decoded at a reduced DCT scale first
    (``Image.draft``, never below ``size``), which makes full-HD frames several times
    cheaper to read; the final resize is bilinear either way.
    """
    with Image.open(path) as image:
        image.draft("RGB", (size, size))
        image = image.convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        return np.array(image)  # a writable copy: torch wraps it without warnings


def readable_header(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the file's header, or None when it is not an image.

    Reads a few bytes only (~30,000 files/s here), so a whole tree is checked up front and
    a text file named ``.jpg`` is reported before training rather than in a worker.
    """
    try:
        with Image.open(path) as image:
            return image.size
    except UNREADABLE:
        return None


@dataclass
class ImageFileDataset(LabeledImages, Dataset):
    """Image files ``paths`` with labels ``[N]``, decoded on access to RGB ``size`` px.

    The same contract as :class:`~cl_ssl.data.images.ImageTensorDataset` (items
    ``(uint8 [3, S, S], label)``, ``labels``, ``label_names``, ``skipped``, ``subset``,
    ``targets``, ``is_labeled``, ``channels``, ``image_size``), so streams, Avalanche and
    strategies take either. Paths are held as one NumPy string array: 150k paths cost a
    few MB and are shared copy-on-write by DataLoader workers.
    """

    paths: np.ndarray
    labels: Tensor
    size: int
    label_names: tuple[str, ...] = ()
    skipped: int = 0

    def __post_init__(self) -> None:
        self.paths = np.asarray(self.paths, dtype=str)
        self.labels = torch.as_tensor(self.labels, dtype=torch.long)
        if self.labels.shape != (len(self.paths),):
            raise ValueError(
                f"{len(self.paths)} files but labels of shape {tuple(self.labels.shape)}"
            )
        if self.size < 1:
            raise ValueError(f"image size must be positive, got {self.size}")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path = self.paths[index]
        try:
            array = decode_file(path, self.size)
        except UNREADABLE as error:
            raise UnreadableImageError(
                f"{path} cannot be decoded ({error}): replace or delete the file and resume "
                "the run (`clssl bench --resume RUN_DIR`)"
            ) from None
        return torch.from_numpy(array).permute(2, 0, 1).contiguous(), int(self.labels[index])

    channels = 3
    """Files are always decoded to RGB."""

    @property
    def image_size(self) -> int:
        return self.size

    def subset(self, indices: Tensor) -> ImageFileDataset:
        """The files at ``indices`` (a boolean mask or integer indices), nothing decoded."""
        indices = torch.as_tensor(indices)
        if indices.dtype == torch.bool:
            indices = indices.nonzero().flatten()
        return ImageFileDataset(
            self.paths[indices.numpy()], self.labels[indices].clone(), self.size, self.label_names
        )

    def resized(self, size: int) -> ImageFileDataset:
        """The same files decoded at ``size`` px (nothing is decoded now)."""
        return ImageFileDataset(self.paths, self.labels, size, self.label_names, self.skipped)

    def load(self, workers: int = 4) -> ImageTensorDataset:
        """Every image decoded into memory (the in-memory path): small data, many epochs."""
        from concurrent.futures import ThreadPoolExecutor

        # PIL releases the GIL while decoding, so threads overlap reads and decodes.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            arrays = list(pool.map(lambda p: decode_file(p, self.size), self.paths, chunksize=256))
        if arrays:
            images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        else:
            images = torch.empty((0, 3, self.size, self.size), dtype=torch.uint8)
        return ImageTensorDataset(images, self.labels.clone(), self.label_names, self.skipped)


ImageDataset = ImageTensorDataset | ImageFileDataset
"""Either kind of dataset; code that needs pixels iterates, it never reads ``.images``."""


def check_files(
    paths: Sequence[str | Path], max_bad_fraction: float, where: str
) -> tuple[list[int], int | None]:
    """Indices of ``paths`` whose header reads, and the first readable image's width.

    Unreadable files are reported in one warning; none readable, or more than
    ``max_bad_fraction`` of them, raises ``TooManyBadImagesError`` with a count and three
    examples. Files that do not exist (a manifest's wrong paths) are told apart as
    "not found" from files that are not images.
    """
    sizes = [readable_header(p) for p in paths]
    kept = [i for i, s in enumerate(sizes) if s is not None]
    bad = [i for i, s in enumerate(sizes) if s is None]
    if not bad:
        return kept, sizes[kept[0]][0] if kept else None
    folder = os.path.commonpath([os.path.abspath(Path(p).parent) for p in paths])
    missing = [i for i in bad if not os.path.exists(paths[i])]
    unreadable = sorted(set(bad) - set(missing))
    share = len(bad) / len(paths)
    if missing:
        found = [f"{len(missing)} not found ({_examples(paths, missing, folder)})"]
        if unreadable:
            found.append(f"{len(unreadable)} unreadable ({_examples(paths, unreadable, folder)})")
        fix = "check the paths (a manifest's are relative to its folder)"
        if not kept or share > max_bad_fraction:
            limit = f" ({share:.0%} > {max_bad_fraction:.0%})" if kept else ""
            raise TooManyBadImagesError(
                f"{where}of the {len(paths)} image files under {folder}, "
                f"{' and '.join(found)}{limit}: {fix}"
            )
        what = f"{' and '.join(found)} under {folder}"
    else:
        examples = _examples(paths, unreadable, folder)
        if not kept:
            raise TooManyBadImagesError(
                f"{where}none of the {len(paths)} image files under {folder} is a readable image "
                f"({examples}): replace them with real images"
            )
        if share > max_bad_fraction:
            raise TooManyBadImagesError(
                f"{where}{len(bad)} of {len(paths)} images are unreadable ({share:.0%} > "
                f"{max_bad_fraction:.0%}) under {folder} ({examples}): fix or remove them"
            )
        what = f"under {folder} ({examples})"
    warnings.warn(f"skipped {len(bad)} unreadable image(s) of {len(paths)}: {what}", stacklevel=3)
    return kept, sizes[kept[0]][0]


def _examples(paths: Sequence[str | Path], indices: Sequence[int], folder: str) -> str:
    """``e.g. a.jpg, b.jpg, c.jpg`` (three of ``indices``, relative to ``folder``)."""
    names = [os.path.relpath(os.path.abspath(paths[i]), folder) for i in indices[:3]]
    return "e.g. " + ", ".join(names) + (", ..." if len(indices) > 3 else "")


def image_batches(dataset: ImageDataset, batch_size: int, workers: int = 0) -> Iterator[Tensor]:
    """uint8 image batches of ``dataset`` in order: slices in memory, a DataLoader on disk."""
    if isinstance(dataset, ImageTensorDataset):
        for start in range(0, len(dataset), batch_size):
            yield dataset.images[start : start + batch_size]
        return
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    for images, _ in loader:
        yield images


def in_memory(dataset: ImageDataset) -> ImageTensorDataset:
    """``dataset`` with its pixels in memory (decoded now when it is disk-backed)."""
    return dataset if isinstance(dataset, ImageTensorDataset) else dataset.load()
