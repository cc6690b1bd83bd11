"""From per-period datasets to an Avalanche benchmark with train and test streams.

A stream module in ``benchmarks/`` loads one :class:`ExperienceData` per period or task and
hands them to :func:`make_stream`, which splits off a deterministic test set where a period
has none and wraps everything for Avalanche (one experience per period).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.utils import as_classification_dataset
from torch import Tensor

from cl_ssl.config import StreamOptions  # defined there (light); still importable from here
from cl_ssl.data.files import ImageDataset
from cl_ssl.data.vods import VodFrames, make_vods


@dataclass
class ExperienceData:
    """One period or task: a name, its training images and, if it has one, a test set.

    ``domain`` names the label space the labels belong to (the source dataset): class 3 of
    ``cifar10`` and class 3 of ``fashion-mnist`` are different classes for evaluation.
    ``groups`` holds one group id per training image (the frame's VOD, say), or None when
    images stand alone; the splits :func:`make_stream` carves out of ``train`` (test split,
    ``--val-fraction``) keep each group on one side, so near-duplicate frames never sit on
    both. A tensor is stored as a list of its values.
    """

    name: str
    train: ImageDataset
    test: ImageDataset | None = None
    domain: str = ""
    groups: Sequence[object] | None = None

    def __post_init__(self) -> None:
        if self.groups is None:
            return
        if isinstance(self.groups, Tensor):
            self.groups = self.groups.tolist()  # tensor elements hash by identity, not value
        self.groups = list(self.groups)
        if len(self.groups) != len(self.train):
            raise ValueError(
                f"experience '{self.name}': {len(self.groups)} group ids for "
                f"{len(self.train)} training images; give one per image"
            )


@dataclass
class SSLStream:
    """A ready benchmark plus what the rest of cl-ssl needs to know about it.

    Attributes:
        name: Registry name of the stream.
        benchmark: Avalanche benchmark with ``train_stream`` and ``test_stream``.
        experiences: The per-period datasets behind the benchmark (test split applied).
        image_size: Side of the square input the augmentation produces.
        augment_overrides: AugmentConfig fields this data needs changed from the method's
            defaults (e.g. tiny digits: larger crops, no mirror images).
        eval_split: ``"test"``, or ``"val"`` when ``experiences[j].test`` holds a
            validation split carved from the training images (``--val-fraction``).
        skipped_images: Unreadable image files left out while loading the stream's sources
            (image folders, manifest frames), summed over them; 0 for in-memory datasets.
            Recorded with the results, so a run on silently thinned data is visible.
    """

    name: str
    benchmark: object
    experiences: list[ExperienceData]
    image_size: int
    augment_overrides: dict[str, object] = field(default_factory=dict)
    eval_split: str = "test"
    skipped_images: int = 0

    @property
    def is_labeled(self) -> bool:
        """True when every experience's images carry labels (evaluation may use them)."""
        return all(
            e.train.is_labeled and e.test is not None and e.test.is_labeled
            for e in self.experiences
        )

    @property
    def num_experiences(self) -> int:
        return len(self.experiences)


def split_indices(
    n: int, test_fraction: float, seed: int, groups: Sequence[object] | None = None
) -> tuple[Tensor, Tensor]:
    """Deterministic (train, test) index split of ``n`` items.

    With ``groups`` (e.g. one VOD id per frame) whole groups go to one side, so items of a
    group never sit on both sides. At least one item (or group) goes to each side when
    ``n >= 2``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    generator = torch.Generator().manual_seed(seed)
    if groups is None:
        order = torch.randperm(n, generator=generator)
        n_test = min(max(1, round(n * test_fraction)), n - 1) if n >= 2 else 0
        return order[n_test:].sort().values, order[:n_test].sort().values
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group ids for {n} items")
    unique = sorted(set(groups), key=str)
    order = torch.randperm(len(unique), generator=generator).tolist()
    n_test = min(max(1, round(len(unique) * test_fraction)), len(unique) - 1)
    test_groups = {unique[i] for i in order[:n_test]} if len(unique) >= 2 else set()
    is_test = torch.tensor([g in test_groups for g in groups], dtype=torch.bool)
    return (~is_test).nonzero().flatten(), is_test.nonzero().flatten()


def make_stream(
    name: str,
    experiences: Sequence[ExperienceData],
    image_size: int,
    options: StreamOptions,
    augment_overrides: dict[str, object] | None = None,
    skipped_images: int = 0,
) -> SSLStream:
    """Wrap per-period datasets as an Avalanche benchmark (one experience each).

    Periods without a test set get a deterministic ``options.test_fraction`` split seeded
    by ``options.split_seed`` and the period's position; ``options.max_images`` caps each
    period. With ``options.val_fraction`` > 0 a validation split is carved out of each
    period's training images and takes the test split's place, so nothing downstream can
    read the test images. Both carved splits keep each of :attr:`ExperienceData.groups`
    (e.g. a VOD) on one side. ``skipped_images`` is what loading the sources left out
    (e.g. ``LoadedDataset.skipped``), passed on to :attr:`SSLStream.skipped_images`.
    """
    if not experiences:
        raise ValueError(f"stream '{name}' has no experiences: check its data source")
    ready: list[ExperienceData] = []
    for position, exp in enumerate(experiences):
        if len(exp.train) == 0:
            raise ValueError(f"experience '{exp.name}' of stream '{name}' has no images")
        seed = options.split_seed + position
        train, groups = exp.train, exp.groups
        if options.max_images is not None and len(train) > options.max_images:
            train, groups = _take(train, groups, cap_indices(len(train), options.max_images, seed))
        test = exp.test
        if test is None:
            train_idx, test_idx = split_indices(len(train), options.test_fraction, seed, groups)
            test = train.subset(test_idx)
            train, groups = _take(train, groups, train_idx)
        else:
            cap = options.max_test_images
            if cap is None:  # the test split keeps the training cap's 9:1 proportion
                cap = None if options.max_images is None else max(1, options.max_images // 9)
            test = cap_images(test, cap or None, seed)
        if options.val_fraction > 0:
            # A different seed from the test split's, so val never mirrors test's positions.
            train_idx, val_idx = split_indices(
                len(train), options.val_fraction, seed + 7_919, groups
            )
            test = train.subset(val_idx)
            train, groups = _take(train, groups, train_idx)
        if len(test) == 0:
            size, least = f"{len(exp.train)} images", "2"
            if exp.groups is not None:
                size, least = f"{size} in {len(set(exp.groups))} group(s)", "2 groups (VODs)"
            raise ValueError(
                f"experience '{exp.name}' of stream '{name}' is too small for a test split "
                f"({size}): give it at least {least}"
            )
        ready.append(ExperienceData(exp.name, train, test, exp.domain, groups))
    benchmark = benchmark_from_datasets(
        train=[as_classification_dataset(e.train) for e in ready],
        test=[as_classification_dataset(e.test) for e in ready],
    )
    eval_split = "val" if options.val_fraction > 0 else "test"
    return SSLStream(
        name,
        benchmark,
        ready,
        image_size,
        dict(augment_overrides or {}),
        eval_split,
        skipped_images,
    )


VOD_SEED_OFFSET = 104_729
"""Keeps :func:`as_vods`' random draws apart from the splits' (seeded by split_seed + period)."""


def as_vods(base: SSLStream, frames: int, seed: int, name: str = "vods") -> SSLStream:
    """``base`` with each experience's training images as ordered VODs of ``frames`` frames.

    Every training image becomes ``frames`` consecutive near-duplicates
    (:func:`cl_ssl.data.vods.make_vods`, seeded by ``seed`` + position +
    :data:`VOD_SEED_OFFSET`), VOD after VOD in the base's order, frame 0 the image itself;
    disk-backed images are decoded once, here. Test (or validation) splits, labels, image
    size, augmentation overrides and ``eval_split`` stay the base's: its caps and carved
    splits are not redone on frames, which would cut VODs and thin the sources twice. Each
    experience's ``groups`` are its frames' ``vod_ids``.
    """
    if frames < 1:
        raise ValueError(f"a VOD needs at least one frame, got {frames}")
    experiences = []
    for position, exp in enumerate(base.experiences):
        if isinstance(exp.train, VodFrames):
            raise ValueError(
                f"stream '{base.name}' already trains on VODs: make VODs of its base stream"
            )
        train = make_vods(exp.train, base.image_size, frames, seed + position + VOD_SEED_OFFSET)
        experiences.append(ExperienceData(exp.name, train, exp.test, exp.domain, train.vod_ids))
    # Every test split is given and no cap is set, so make_stream only wraps for Avalanche.
    options = StreamOptions()
    stream = make_stream(
        name, experiences, base.image_size, options, base.augment_overrides, base.skipped_images
    )
    return replace(stream, eval_split=base.eval_split)


def cap_indices(n: int, cap: int, seed: int) -> Tensor:
    """``cap`` of ``range(n)``, a seeded random choice, in increasing order."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:cap].sort().values


def cap_images(dataset: ImageDataset, cap: int | None, seed: int) -> ImageDataset:
    """At most ``cap`` images of ``dataset``: a seeded random subset in the original order."""
    if cap is None or len(dataset) <= cap:
        return dataset
    return dataset.subset(cap_indices(len(dataset), cap, seed))


def _take(
    dataset: ImageDataset, groups: list[object] | None, indices: Tensor
) -> tuple[ImageDataset, list[object] | None]:
    """The images at ``indices`` and their group ids (None stays None)."""
    kept = None if groups is None else [groups[i] for i in indices.tolist()]
    return dataset.subset(indices), kept


def select_classes(dataset: ImageDataset, classes: Sequence[int]) -> ImageDataset:
    """The images of ``dataset`` whose label is in ``classes`` (labels unchanged)."""
    mask = torch.isin(dataset.labels, torch.tensor(list(classes), dtype=torch.long))
    return dataset.subset(mask.nonzero().flatten())


def class_groups(num_classes: int, tasks: int) -> list[list[int]]:
    """Consecutive, near-equal groups of class ids, one per task."""
    if not 1 <= tasks <= num_classes:
        raise ValueError(
            f"--tasks must be between 1 and {num_classes} (the number of classes), got {tasks}"
        )
    bounds = [round(i * num_classes / tasks) for i in range(tasks + 1)]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(tasks)]
