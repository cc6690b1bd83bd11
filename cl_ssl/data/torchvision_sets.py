"""Datasets read through torchvision from a local copy (``--data-root``); never downloaded.

- ``stl10``: STL-10's labeled splits (5,000 train / 8,000 test, 96x96 RGB, ten classes)
  from torchvision's binary layout (``ROOT/stl10_binary/``).
- ``cifar100``: CIFAR-100's 50,000 train / 10,000 test images (32x32 RGB) with their 100
  fine labels and names, from torchvision's pickles (``ROOT/cifar-100-python/{train,test,meta}``,
  as ``CIFAR100(ROOT, download=False)`` reads them).
- ``celeba``: CelebA's aligned faces (``ROOT/celeba/img_align_celeba/`` plus its list
  files), decoded and resized to 64x64 while loading (~1.3 GB for the 162k training
  faces). Identities are not classes, so it is unlabeled: streams report its SSL loss.

ImageNet needs no loader of its own: its ``train/`` and ``val/`` folders (val sorted into
class folders) are ImageFolder trees, so pass the path: ``--datasets /data/imagenet/train``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.registry import register_dataset

CELEBA_SIZE = 64


def _require_root(root: Path | None, name: str, layout: str) -> Path:
    if root is None:
        raise ValueError(
            f"{name} needs --data-root (or NAME=ROOT) pointing at {layout} (nothing is downloaded)"
        )
    return Path(root)


def _open(factory, name: str, root: Path, layout: str, **kwargs):
    try:
        return factory(str(root), download=False, **kwargs)
    except RuntimeError as error:  # torchvision's "Dataset not found or corrupted"
        raise FileNotFoundError(
            f"{name} not found under {root}: expected {layout} (nothing is downloaded)"
        ) from error


def _labeled_stl10():
    from torchvision.datasets import STL10

    class LabeledSTL10(STL10):
        """STL-10 that needs only the labeled files.

        torchvision's own check also wants the 2.6 GB unlabeled split and archive checksums.
        """

        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            return all((folder / f"{s}_{k}.bin").is_file() for s in ("train", "test") for k in "Xy")

    return LabeledSTL10


@register_dataset("stl10")
def load_stl10(root: Path | None) -> LoadedDataset:
    """STL-10 labeled splits (96x96 RGB, ten classes) from torchvision's binary files."""
    layout = "ROOT/stl10_binary/{train,test}_{X,y}.bin"
    root = _require_root(root, "stl10", layout)
    factory = _labeled_stl10()
    splits = [_open(factory, "stl10", root, layout, split=s) for s in ("train", "test")]
    names = tuple(splits[0].classes)
    train, test = (
        ImageTensorDataset(
            torch.from_numpy(s.data.copy()), torch.from_numpy(s.labels.copy()), names
        )
        for s in splits
    )
    return LoadedDataset(train, test)


def _present_cifar100():
    from torchvision.datasets import CIFAR100

    class PresentCIFAR100(CIFAR100):
        """CIFAR-100 whose files need only exist: torchvision also checks the archive's md5s."""

        meta = {**CIFAR100.meta, "md5": None}  # check_integrity(path, None): the file exists

        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    return PresentCIFAR100


@register_dataset("cifar100")
def load_cifar100(root: Path | None) -> LoadedDataset:
    """CIFAR-100 (32x32 RGB, 100 fine labels and their names) from torchvision's pickles."""
    layout = "ROOT/cifar-100-python/{train,test,meta} (torchvision's CIFAR100 layout)"
    root = _require_root(root, "cifar100", layout)
    if not (root / "cifar-100-python").is_dir() and (root / "train").is_file():
        raise FileNotFoundError(
            f"cifar100 not found under {root}: expected {layout}; {root} looks like "
            f"cifar-100-python/ itself, so pass its parent {root.parent} (nothing is downloaded)"
        )
    factory = _present_cifar100()
    splits = [_open(factory, "cifar100", root, layout, train=t) for t in (True, False)]
    names = tuple(splits[0].classes)
    train, test = (
        ImageTensorDataset(
            torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(),  # HWC -> CHW
            torch.tensor(s.targets),
            names,
        )
        for s in splits
    )
    return LoadedDataset(train, test)


@register_dataset("celeba")
def load_celeba(root: Path | None) -> LoadedDataset:
    """CelebA aligned faces at 64x64, unlabeled, official train/test partition."""
    from torchvision.datasets import CelebA

    layout = "ROOT/celeba/img_align_celeba/*.jpg and CelebA's list files"
    root = _require_root(root, "celeba", layout)
    splits = []
    for split in ("train", "test"):
        faces = _open(CelebA, "celeba", root, layout, split=split, target_type=[])
        folder = Path(faces.root) / faces.base_folder / "img_align_celeba"
        paths = [folder / name for name in faces.filename]
        with ThreadPoolExecutor(max_workers=4) as pool:
            arrays = list(pool.map(_small_face, paths, chunksize=256))
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        splits.append(ImageTensorDataset.unlabeled(images))
    return LoadedDataset(*splits)


def _small_face(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        # Centre square (178x218 -> 178x178) before resizing: faces are centred.
        width, height = image.size
        top = (height - width) // 2
        square = image.convert("RGB").crop((0, top, width, top + width))
        return np.asarray(square.resize((CELEBA_SIZE, CELEBA_SIZE), Image.Resampling.BILINEAR))
