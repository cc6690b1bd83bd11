"""ImageFolder trees (``root/<class>/*.jpg``) decoded into memory, bad files skipped."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.registry import register_dataset

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class TooManyBadImagesError(ValueError):
    """More unreadable images than the allowed share."""


def decode_images(
    paths: Sequence[Path], size: int | None, max_bad_fraction: float = 0.05
) -> tuple[torch.Tensor, list[int]]:
    """Decode ``paths`` to uint8 RGB ``[N, 3, S, S]``; return it and the indices kept.

    Images are resized to ``size`` (or the first image's size when None). Unreadable files
    are skipped and reported with one warning; more than ``max_bad_fraction`` of them
    raises :class:`TooManyBadImagesError`.
    """
    if size is None and paths:
        with Image.open(paths[0]) as first:
            size = first.size[0]

    def load(path: Path) -> np.ndarray | None:
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                if image.size != (size, size):
                    image = image.resize((size, size), Image.Resampling.BILINEAR)
                return np.asarray(image)
        except (OSError, UnidentifiedImageError, ValueError):
            return None

    # PIL releases the GIL while decoding, so threads overlap file reads and decodes.
    with ThreadPoolExecutor(max_workers=4) as pool:
        arrays = list(pool.map(load, paths, chunksize=256))
    kept = [i for i, a in enumerate(arrays) if a is not None]
    bad = len(paths) - len(kept)
    if bad:
        examples = ", ".join(str(paths[i]) for i, a in enumerate(arrays) if a is None)[:300]
        share = bad / max(1, len(paths))
        if share > max_bad_fraction:
            raise TooManyBadImagesError(
                f"{bad} of {len(paths)} images are unreadable ({share:.0%} > "
                f"{max_bad_fraction:.0%}), e.g. {examples}: fix or remove them"
            )
        warnings.warn(
            f"skipped {bad} unreadable image(s) of {len(paths)}: {examples}", stacklevel=2
        )
    if not kept:
        return torch.empty((0, 3, size or 1, size or 1), dtype=torch.uint8), kept
    stacked = torch.from_numpy(np.stack([arrays[i] for i in kept]))
    return stacked.permute(0, 3, 1, 2).contiguous(), kept


def load_image_folder(
    root: Path,
    size: int | None = None,
    classes: Sequence[str] | None = None,
    max_per_class: int | None = None,
) -> ImageTensorDataset:
    """Decode an ImageFolder tree; labels index the sorted class folders.

    Args:
        root: Folder with one sub-folder of images per class.
        size: Side images are resized to; None keeps the first image's size.
        classes: Class folders to read (default: all, sorted); labels still index all.
        max_per_class: Read only the first N files (sorted by name) of each class.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"image folder {root} does not exist: pass --data-root pointing at a folder "
            f"with one sub-folder of images per class"
        )
    all_classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not all_classes:
        raise FileNotFoundError(f"no class folders in {root}: expected {root}/<class>/*.jpg")
    wanted = list(classes) if classes is not None else all_classes
    missing = [c for c in wanted if c not in all_classes]
    if missing:
        raise FileNotFoundError(f"class folder(s) {missing} not found in {root}")
    paths: list[Path] = []
    labels: list[int] = []
    for name in wanted:
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files = files[:max_per_class] if max_per_class is not None else files
        paths += files
        labels += [all_classes.index(name)] * len(files)
    images, kept = decode_images(paths, size)
    return ImageTensorDataset(images, torch.tensor(labels)[kept], tuple(all_classes))


@register_dataset("cifar10")
def load_cifar10(root: Path | None) -> LoadedDataset:
    """CIFAR-10 as JPEGs in ImageFolder layout: ``root/{train,test}/<class>/*.jpg``."""
    if root is None:
        raise FileNotFoundError(
            "CIFAR-10 needs --data-root: a folder with train/ and test/ in ImageFolder layout "
            "(e.g. ../shared/data/cifar10)"
        )
    root = Path(root)
    return LoadedDataset(
        load_image_folder(root / "train", 32), load_image_folder(root / "test", 32)
    )
