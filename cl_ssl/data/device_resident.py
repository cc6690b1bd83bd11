"""Training batches indexed from images held on the device (``--data-on-device``).

An experience whose training images are an in-memory tensor (:class:`ImageTensorDataset`,
alone or under Avalanche's subset and concatenation wrappers, without transforms), or
image files small enough to decode whole (:class:`ImageFileDataset`, decoded once per
experience on the host, with threads), is copied to the training device once, as the uint8
tensor it is; every batch is then an
``index_select`` on the device: no DataLoader, no per-item collation, no host-to-device copy
per step and no host sync per step (one small copy of the epoch's order per epoch).

The order is the loader's, draw for draw: each epoch draws the DataLoader iterator's base
seed from the global generator (the first epoch only, where the loader's workers persist),
then asks the same sampler (a ``RandomSampler`` shuffling
with a seed it draws from the global generator, a ``SequentialSampler`` in online mode, the
template's ``DistributedSampler`` under torchrun) for the epoch's indices, and cuts them into
batches with the same ``drop_last``. A run with the resident path therefore sees the same
batches, the same views and the same metrics as with the loader (tested on the CPU).

Example:
    >>> images = resident_tensors(dataset)  # (images, labels), or the reason it is not
    >>> batches = ResidentBatches(*images, RandomSampler(dataset), 256, False, "cuda")
    >>> x, y = next(iter(batches))  # uint8 [256, C, H, W] and int64 [256], on the device
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sized
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Sampler

from cl_ssl.data.files import ImageFileDataset
from cl_ssl.data.images import ImageTensorDataset

Leaf = ImageTensorDataset | ImageFileDataset

DataOnDevice = Literal["auto", "on", "off"]


def _untransformed(data: object, group: str) -> bool:
    """No transform of ``group`` at this level of an Avalanche dataset."""
    for name in ("_frozen_transform_groups", "_transform_groups"):
        groups = getattr(data, name, None)
        if groups is not None and groups.transform_groups[group] is not None:
            return False
    return True


def _shape(leaf: Leaf) -> tuple[int, ...]:
    """``(C, H, W)`` of one image of ``leaf``."""
    if isinstance(leaf, ImageFileDataset):
        return (3, leaf.size, leaf.size)
    return tuple(leaf.images.shape[1:])


def _leaves(data: object, group: str) -> tuple[list[Leaf], list | None] | str:
    """The datasets of images under ``data`` and its flat indices, or why there are none."""
    if isinstance(data, (ImageTensorDataset, ImageFileDataset)):
        return [data], None
    flat = getattr(data, "_flat_data", data)  # an AvalancheDataset holds a flat dataset
    attributes = getattr(data, "_data_attributes", {})
    if any(a.use_in_getitem for a in attributes.values()):
        return "its items carry extra attributes (task labels)"
    if not hasattr(flat, "_datasets") or not hasattr(flat, "_indices"):
        return f"{type(data).__name__} holds no image tensor or image files"
    if not _untransformed(flat, group):
        return "it has per-item transforms"
    leaves: list[Leaf] = []
    parts: list[Tensor] = []
    offset = 0
    for child in flat._datasets:
        found = _leaves(child, group)
        if isinstance(found, str):
            return found
        children, indices = found
        size = sum(len(c) for c in children)
        positions = torch.arange(size) if indices is None else torch.as_tensor(indices)
        parts.append(positions + offset)
        leaves += children
        offset += size
    positions = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
    if flat._indices is not None:
        positions = positions[torch.as_tensor(flat._indices, dtype=torch.long)]
    same = all(_shape(leaf) == _shape(leaves[0]) for leaf in leaves)
    if not same:
        return "its images differ in size"
    identity = len(positions) == offset and bool((positions == torch.arange(offset)).all())
    return leaves, None if identity else positions.tolist()


def resident_bytes(dataset: Sized, leaves: list[Leaf]) -> int:
    """Bytes of ``dataset``'s images as one tensor (labels are negligible).

    Image files count every file of their leaves: all are decoded, used or not.
    """
    if any(isinstance(leaf, ImageFileDataset) for leaf in leaves):
        files = max(len(dataset), sum(len(leaf) for leaf in leaves))
        return files * math.prod(_shape(leaves[0]))  # decoded to uint8
    image = leaves[0].images[0]
    return len(dataset) * image.numel() * image.element_size()


def resident_tensors(dataset: Sized, max_mb: float | None = None) -> tuple[Tensor, Tensor] | str:
    """``(images, labels)`` of every item of ``dataset`` in index order, on the host.

    Image files are decoded here (after the size check). A string instead says why the
    dataset cannot be held as tensors: not images, per item transforms, over ``max_mb``
    megabytes (2**20 bytes), or items that differ from the tensors (a spot check of three
    items guards against a wrapper this module does not know).
    """
    group = getattr(getattr(dataset, "_transform_groups", None), "current_group", "train")
    found = _leaves(dataset, group)
    if isinstance(found, str):
        return found
    leaves, positions = found
    if not leaves or len(dataset) == 0:
        return "it is empty"
    size_mb = resident_bytes(dataset, leaves) / 2**20
    if max_mb is not None and size_mb > max_mb:
        return f"its images take {size_mb:.0f} MB, over --device-data-max-mb {max_mb:g}"
    leaves = [leaf.load() if isinstance(leaf, ImageFileDataset) else leaf for leaf in leaves]
    images = torch.cat([leaf.images for leaf in leaves]) if len(leaves) > 1 else leaves[0].images
    labels = torch.cat([leaf.labels for leaf in leaves]) if len(leaves) > 1 else leaves[0].labels
    if positions is not None:
        index = torch.as_tensor(positions, dtype=torch.long)
        images, labels = images[index], labels[index]
    n = len(dataset)
    for i in sorted({0, n // 2, n - 1}):
        image, label = dataset[i][:2]  # type: ignore[index]
        if not torch.equal(torch.as_tensor(image), images[i]) or int(label) != int(labels[i]):
            return f"its item {i} differs from the tensor behind it"
    return images, labels


class ResidentBatches:
    """Batches ``[images[idx], labels[idx]]`` of device tensors, in ``sampler``'s order.

    Iterating draws what a ``DataLoader`` iterator draws from the global generator (its
    base seed: every epoch, or the first only with ``persistent_workers``), then
    ``sampler``'s indices for the epoch; batches of
    ``batch_size`` (the last one dropped when short and ``drop_last``), as
    ``torch.utils.data.BatchSampler`` cuts them.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        sampler: Sampler[int],
        batch_size: int,
        drop_last: bool,
        device: str | torch.device,
        persistent_workers: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.images = images.to(self.device)  # once per experience
        self.labels = labels.to(self.device)
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last
        self.persistent_workers, self.epochs = persistent_workers, 0

    def __len__(self) -> int:
        rows = len(self.sampler)  # type: ignore[arg-type]
        return rows // self.batch_size if self.drop_last else math.ceil(rows / self.batch_size)

    def __iter__(self) -> Iterator[list[Tensor]]:
        if self.epochs == 0 or not self.persistent_workers:
            torch.empty((), dtype=torch.int64).random_()  # the DataLoader iterator's base seed
        self.epochs += 1
        order = torch.as_tensor(list(self.sampler), dtype=torch.long)
        if self.device.type == "cuda":  # one asynchronous copy per epoch, no host wait
            order = order.pin_memory().to(self.device, non_blocking=True)
        for step in range(len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield [self.images.index_select(0, index), self.labels.index_select(0, index)]


def use_resident(mode: DataOnDevice, device: torch.device) -> bool:
    """Whether ``mode`` asks for the resident path on ``device`` (auto: CUDA only)."""
    return mode == "on" or (mode == "auto" and device.type == "cuda")


_told: set[str] = set()


def fall_back(reason: str) -> None:
    """Say once per reason that training keeps the DataLoader, and why."""
    if reason not in _told:
        _told.add(reason)
        message = f"--data-on-device: training data stays on the loader: {reason}"
        warnings.warn(message, stacklevel=2)
