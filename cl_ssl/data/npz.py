"""A dataset packed in one ``.npz`` file: decoded images that travel as a single file.

``--dataset npz --data-root FILE.npz`` (or ``npz=FILE.npz`` in ``--datasets``) reads it, and so
does every reader of CIFAR-10 (``cifar10-split``'s ``--data-root``, ``cifar10=FILE.npz``) when
given a file instead of a folder: ``examples/gpu_data.py`` packs a CIFAR-10 sample so a machine
without ``../shared`` (the GPU check's) trains on real images.

Layout (``numpy.savez_compressed``), one array per key:

- ``train_images``: uint8 ``[N, C, H, W]`` (C = 1 or 3), ``train_labels``: int ``[N]``;
- ``test_images`` / ``test_labels``: the same for the test split (optional);
- ``label_names``: the class names, a label indexing them (optional).

Example:
    >>> save_npz(Path("small.npz"), load_cifar10(Path("../shared/data/cifar10")))
    >>> load_npz(Path("small.npz")).train.images.shape
    torch.Size([50000, 3, 32, 32])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cl_ssl.atomic import atomic_write
from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.files import in_memory
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.registry import register_dataset

SPLITS = ("train", "test")


def is_npz(root: Path | str | None) -> bool:
    """True when ``root`` names an existing ``.npz`` file (not a folder)."""
    return root is not None and Path(root).suffix == ".npz" and Path(root).is_file()


def save_npz(path: Path, data: LoadedDataset) -> None:
    """Write ``data``'s splits (decoded first if disk-backed) to ``path`` in the layout above."""
    arrays: dict[str, np.ndarray] = {}
    names: tuple[str, ...] = ()
    for split in SPLITS:
        images = getattr(data, split)
        if images is None:
            continue
        images = in_memory(images)
        arrays[f"{split}_images"] = images.images.numpy()
        arrays[f"{split}_labels"] = images.labels.numpy()
        names = names or images.label_names
    if names:
        arrays["label_names"] = np.asarray(names, dtype=str)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # An open file (savez would append .npz to other names), replacing ``path`` only once
    # whole: a half-written archive never sits where a bench would read it.
    with atomic_write(path, binary=True) as file:
        np.savez_compressed(file, **arrays)


def load_npz(path: Path | str) -> LoadedDataset:
    """The splits stored in ``path`` (see the module docstring), in memory."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"packed dataset {path} does not exist: pass an .npz file written by "
            "examples/gpu_data.py (or cl_ssl.data.npz.save_npz)"
        )
    with np.load(path, allow_pickle=False) as stored:
        keys = set(stored.files)
        if "train_images" not in keys or "train_labels" not in keys:
            raise ValueError(
                f"{path} holds {sorted(keys)}: a packed dataset needs train_images and "
                "train_labels (write it with cl_ssl.data.npz.save_npz)"
            )
        names = tuple(str(n) for n in stored["label_names"]) if "label_names" in keys else ()
        splits = [
            ImageTensorDataset(
                torch.from_numpy(stored[f"{split}_images"]),
                torch.from_numpy(stored[f"{split}_labels"]),
                names,
            )
            if f"{split}_images" in keys
            else None
            for split in SPLITS
        ]
    return LoadedDataset(*splits)


@register_dataset("npz")
def load_npz_dataset(root: Path | None) -> LoadedDataset:
    """A dataset packed in one .npz file (``--data-root FILE.npz``)."""
    if root is None:
        raise FileNotFoundError(
            "npz needs --data-root (or npz=FILE): the .npz file written by examples/gpu_data.py"
        )
    return load_npz(root)
