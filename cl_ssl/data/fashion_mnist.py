"""Fashion-MNIST from its IDX files (Debian's ``dataset-fashion-mnist`` or any copy).

Reads ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` from ``root`` (default
``/usr/share/datasets/fashion-mnist``, where ``apt-get install dataset-fashion-mnist`` puts
them; a torchvision download root's ``FashionMNIST/raw`` folder works too). 60,000 training
and 10,000 test images, 28x28 grayscale, ten classes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.registry import register_dataset

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST file format: magic, dims, big-endian sizes, uint8 data)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an uint8 IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: {array.size} values for shape {shape}")
    return array.reshape(shape)


def _find(root: Path, stem: str) -> Path:
    for folder in (root, root / "FashionMNIST" / "raw", root / "raw"):
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(
        f"{stem}[.gz] not found under {root}: apt-get install dataset-fashion-mnist, "
        "or pass --data-root with the IDX files"
    )


def _split(root: Path, prefix: str) -> ImageTensorDataset:
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
    return ImageTensorDataset(
        torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.copy()), CLASSES
    )


@register_dataset("fashion-mnist")
def load_fashion_mnist(root: Path | None = None) -> LoadedDataset:
    """Fashion-MNIST, 28x28 grayscale, official 60k/10k split (Debian's IDX files by default)."""
    root = Path(root) if root is not None else DEFAULT_ROOT
    return LoadedDataset(_split(root, "train"), _split(root, "t10k"))
