"""ImageFolder trees (``root/<class>/*.jpg``) indexed for on-demand decoding, bad files skipped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.files import (
    ImageFileDataset,
    TooManyBadImagesError,  # noqa: F401  (raised by check_files; importable from here)
    check_files,
)
from cl_ssl.data.images import UNLABELED
from cl_ssl.data.npz import is_npz, load_npz
from cl_ssl.registry import register_dataset

_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGE_SUFFIXES = set(_SUFFIXES)
EXPECTED_FILES = ", ".join(f"*{suffix}" for suffix in _SUFFIXES)
"""The image files a folder is read for, as error messages list them."""


class NoImagesError(FileNotFoundError):
    """A folder that should hold images holds no image files (or no class folders)."""


def decode_images(
    paths: Sequence[Path], size: int | None, max_bad_fraction: float = 0.05
) -> tuple[torch.Tensor, list[int]]:
    """Decode ``paths`` to uint8 RGB ``[N, 3, S, S]``; return it and the indices kept.

    Images are resized to ``size`` (or the first readable image's width when None).
    Unreadable files are skipped and reported with one warning (``len(paths) - len(kept)``
    is their count); none readable, or more than ``max_bad_fraction`` of them, raises
    :class:`TooManyBadImagesError`. The in-memory form of :func:`index_files`.
    """
    files, kept = index_files(paths, torch.full((len(paths),), UNLABELED), size, max_bad_fraction)
    return files.load().images, kept


def index_files(
    paths: Sequence[Path | str],
    labels: torch.Tensor,
    size: int | None,
    max_bad_fraction: float = 0.05,
    label_names: tuple[str, ...] = (),
    where: str = "",
) -> tuple[ImageFileDataset, list[int]]:
    """A disk-backed dataset of the readable ``paths`` and their positions in ``paths``.

    Headers are checked, nothing is decoded. ``size`` None takes the first readable image's
    width. The dataset's ``skipped`` counts the unreadable files.
    """
    kept, width = check_files(paths, max_bad_fraction, where)
    files = ImageFileDataset(
        np.asarray([str(p) for p in paths], dtype=str)[kept] if kept else np.asarray([], str),
        labels[kept],
        size or width or 1,
        label_names,
        len(paths) - len(kept),
    )
    return files, kept


def describe_contents(folder: Path) -> str:
    """What ``folder`` holds instead of what was expected, for an error message."""
    entries = sorted(
        p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if p.name[0] != "."
    )
    if not entries:
        return "it is empty"
    more = f" and {len(entries) - 3} more" if len(entries) > 3 else ""
    return f"it holds {', '.join(entries[:3])}{more}"


def load_image_folder(
    root: Path,
    size: int | None = None,
    classes: Sequence[str] | None = None,
    max_per_class: int | None = None,
) -> ImageFileDataset:
    """Index an ImageFolder tree (disk-backed); labels index the sorted class folders.

    Only file names and headers are read here (~2 s for CIFAR-10's 60k JPEGs); images are
    decoded when training asks for them, after caps and splits (``.load()`` decodes all).

    Args:
        root: Folder with one sub-folder of images per class.
        size: Side images are resized to; None keeps the first readable image's width.
        classes: Class folders to read (default: all, sorted); labels still index all.
        max_per_class: Read only the first N files (sorted by name) of each class.

    The result's ``skipped`` counts the unreadable files left out. A root without class
    folders, a class folder without image files, and a tree without one readable image
    raise one-line errors naming the folder and what it should hold.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"image folder {root} does not exist: pass --data-root pointing at a folder "
            f"with one sub-folder of images per class"
        )
    # Hidden folders (.ipynb_checkpoints, .git) are never classes.
    all_classes = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name[0] != ".")
    if not all_classes:
        raise NoImagesError(
            f"no class folders in {root} ({describe_contents(root)}): expected "
            f"{root}/<class>/ folders of images, one per class"
        )
    wanted = list(classes) if classes is not None else all_classes
    missing = [c for c in wanted if c not in all_classes]
    if missing:
        raise FileNotFoundError(f"class folder(s) {missing} not found in {root}")
    paths: list[Path] = []
    labels: list[int] = []
    for name in wanted:
        folder = root / name
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            # An empty class would be a label without images: no split, no metric can use it.
            raise NoImagesError(
                f"no images in {folder}/ (expected {EXPECTED_FILES}; "
                f"{describe_contents(folder)}): add images or remove the folder"
            )
        files = files[:max_per_class] if max_per_class is not None else files
        paths += files
        labels += [all_classes.index(name)] * len(files)
    return index_files(paths, torch.tensor(labels), size, label_names=tuple(all_classes))[0]


@register_dataset("cifar10")
def load_cifar10(root: Path | None) -> LoadedDataset:
    """CIFAR-10 as JPEGs in ImageFolder layout: ``root/{train,test}/<class>/*.jpg``.

    A ``.npz`` file instead of a folder is a packed sample (:mod:`cl_ssl.data.npz`).
    """
    if is_npz(root):
        return load_npz(root)
    if root is None:
        raise FileNotFoundError(
            "CIFAR-10 needs --data-root: a folder with train/ and test/ in ImageFolder layout "
            "(e.g. ../shared/data/cifar10)"
        )
    root = Path(root)
    return LoadedDataset(
        load_image_folder(root / "train", 32), load_image_folder(root / "test", 32)
    )
