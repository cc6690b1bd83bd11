"""Downstream finetune: a frozen embedding, an MLP head, a small labeled set, a report.

The seed's Experiment 2. The encoder of a checkpoint is frozen, so its features are
computed once; an MLP head (Linear - ReLU - Linear) is trained on the features of
``train_per_class`` labeled images per class, and scikit-learn's classification report
(per-class precision, recall, F1 and support; accuracy; macro and weighted averages) is
computed on the test split.

Data, kept apart from what the encoder trained on (else the test images were seen in
self-supervised training and the report flatters the embedding):

- ``stream`` (default): the checkpoint's stream is rebuilt from its run's ``config.json``
  (or, for a checkpoint copied out of its run, the configuration it holds) and only the
  union of its experiences' *test* splits is used, split per class into the head's
  training images (``train_per_class``, at most ``1 - test_fraction`` of a class) and test
  images (the rest). Classes of different source datasets (``domain``) get
  distinct ids. A run evaluated on validation splits (``--val-fraction``) still never
  touched its test splits, so those are used.
- a dataset registry name (``digits``, ``cifar10`` with ``--data-root``, ...) or a folder
  in ImageFolder layout (``DIR/<class>/*.jpg``, or ``DIR/{train,test}/<class>/*.jpg``):
  every image equal to one of the stream's training images (same uint8 content, compared
  also after resizing to the stream's format) is dropped first. Without a test split, a
  stratified, seeded ``test_fraction`` of the images is held out.

Example:
    >>> checkpoint = Path("runs/x/lwf-ssl/seed0/checkpoints/exp4.pt")
    >>> report = finetune(FinetuneConfig(checkpoint))
    >>> report.source
    "the stream's test splits (never trained on): 180 images"
    >>> report.table.loc["accuracy", "f1-score"]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from sklearn.metrics import classification_report
from sklearn.model_selection import train_test_split
from torch import Tensor, nn

from cl_ssl.checkpoint import load_encoder
from cl_ssl.config import STREAM_DATA, FinetuneConfig
from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.files import image_batches, in_memory
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.data.resolve import harmonise, load_dataset
from cl_ssl.run_config import load_run_config
from cl_ssl.streams import SSLStream


@dataclass
class FinetuneReport:
    """The classification report as a table (rows: classes, accuracy, averages) and text.

    Attributes:
        source: Where the labeled images came from, for the reader of the report.
        dropped: Images of ``data`` left out because the stream trained on them.
    """

    table: pd.DataFrame
    text: str
    train_images: int
    test_images: int
    source: str = ""
    dropped: int = 0


@dataclass
class LabeledData:
    """The head's training and test images and a sentence on where they came from."""

    train: ImageTensorDataset
    test: ImageTensorDataset
    source: str
    dropped: int = 0


def image_keys(images: Tensor) -> list[bytes]:
    """One digest per image of its shape and uint8 bytes: equal keys mean equal images."""
    shape = repr(tuple(images.shape[1:])).encode()
    rows = images.contiguous().reshape(len(images), -1).numpy()
    return [hashlib.blake2b(shape + row.tobytes(), digest_size=16).digest() for row in rows]


@dataclass(frozen=True)
class SeenImages:
    """Content keys of every image a stream trains on, and the image formats it uses."""

    keys: frozenset[bytes]
    formats: frozenset[tuple[int, int, int]]

    @classmethod
    def of_stream(cls, stream: SSLStream) -> SeenImages:
        """The training images of every experience of ``stream``."""
        keys: set[bytes] = set()
        formats = set()
        for experience in stream.experiences:
            images = in_memory(experience.train).images  # disk-backed streams decode here
            keys.update(image_keys(images))
            formats.add(tuple(images.shape[1:]))
        return cls(frozenset(keys), frozenset(formats))

    def unseen(self, dataset: ImageTensorDataset) -> Tensor:
        """Boolean mask of the images of ``dataset`` that the stream never trained on.

        Images are compared as they are and, since streams resize and colour-convert their
        sources (``pair``), also after :func:`harmonise` to each of the stream's formats.
        """
        keep = torch.ones(len(dataset), dtype=torch.bool)
        if not len(dataset):
            return keep
        for channels, height, width in self.formats:
            candidate = dataset
            size = dataset.image_size
            if (dataset.channels, size, size) != (channels, height, width):
                if height != width or dataset.channels not in (channels, 1):
                    continue  # harmonise makes square images and only turns gray into RGB
                # Before decoding: files are decoded at the stream's size, as the stream
                # decoded them (a decoded image resized afterwards has other pixels).
                candidate = harmonise(dataset, height, channels)
            pixels = in_memory(candidate).images
            keep &= torch.tensor([k not in self.keys for k in image_keys(pixels)])
        return keep


def rebuild_stream(checkpoint: Path, **changes: Any) -> SSLStream:
    """The stream a checkpoint's run trained on, rebuilt from the run's config.

    Args:
        checkpoint: A checkpoint (or run directory) with the run's ``config.json``, or a
            checkpoint that holds the run's configuration.
        **changes: StreamOptions fields to change, e.g. ``val_fraction=0.0``.
    """
    from cl_ssl.registry import streams

    config = load_run_config(checkpoint)
    if config.stream_options is None:
        raise ValueError(
            f"{config.path} does not record the stream options, so the stream cannot be "
            "rebuilt: rerun the bench with this cl-ssl, or pass --data NAME --no-leak-check"
        )
    # An option this version does not know changes the stream only when it is set.
    unknown = {k: v for k, v in config.ignored_options.items() if v}
    if unknown:
        listed = ", ".join(f"{k}={v}" for k, v in unknown.items())
        raise ValueError(
            f"{config.path} sets stream options this cl-ssl does not know ({listed}): "
            "update cl-ssl to rebuild the run's stream"
        )
    return streams.get(config.stream)(replace(config.stream_options, **changes))


def stream_test_set(stream: SSLStream) -> ImageTensorDataset:
    """The union of the test splits of ``stream``, with globally unique labels.

    Experiences of different source datasets (``ExperienceData.domain``) may reuse label
    ids, so classes are keyed by (domain, label) and renumbered; names become
    ``domain/name`` when there are several domains.
    """
    if not stream.is_labeled:
        raise ValueError(
            f"stream '{stream.name}' has unlabeled images: finetuning needs labels; "
            "pass --data NAME (a labeled dataset)"
        )
    tests = [in_memory(e.test) for e in stream.experiences if e.test is not None]
    shapes = {tuple(t.images.shape[1:]) for t in tests}
    if len(shapes) > 1:
        raise ValueError(
            f"stream '{stream.name}' test images differ in shape ({sorted(shapes)}): "
            "pass --data NAME (a labeled dataset)"
        )
    domains = [str(getattr(e, "domain", "") or "") for e in stream.experiences if e.test]
    keys = [(d, int(y)) for d, t in zip(domains, tests, strict=True) for y in t.labels]
    classes = sorted(set(keys))
    index = {key: i for i, key in enumerate(classes)}
    names_of = {d: t.label_names for d, t in zip(domains, tests, strict=True)}
    several = len(set(domains)) > 1

    def name(domain: str, label: int) -> str:
        names = names_of[domain]
        text = names[label] if 0 <= label < len(names) else str(label)
        return f"{domain}/{text}" if several else text

    labels = torch.tensor([index[key] for key in keys], dtype=torch.long)
    images = torch.cat([t.images for t in tests])
    return ImageTensorDataset(images, labels, tuple(name(d, y) for d, y in classes))


def split_per_class(
    dataset: ImageTensorDataset, per_class: int | None, test_fraction: float, seed: int
) -> tuple[ImageTensorDataset, ImageTensorDataset]:
    """Seeded, stratified (train, test): ``per_class`` images of a class train, the rest test.

    At least ``test_fraction`` of every class of two or more images (one image at least)
    stays for testing, so small classes are still measured.
    """
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    train, test = [], []
    for label in dataset.labels.unique():
        mine = order[dataset.labels[order] == label]
        n_test = min(max(1, round(len(mine) * test_fraction)), len(mine) - 1)
        n_train = len(mine) - n_test
        if per_class is not None:
            n_train = min(n_train, per_class)
        train.append(mine[:n_train])
        test.append(mine[n_train:])
    train_idx = torch.cat(train).sort().values if train else torch.empty(0, dtype=torch.long)
    test_idx = torch.cat(test).sort().values if test else torch.empty(0, dtype=torch.long)
    return dataset.subset(train_idx), dataset.subset(test_idx)


def load_labeled(
    data: str,
    root: Path | None,
    test_fraction: float,
    seed: int,
    seen: SeenImages | None = None,
) -> tuple[LoadedDataset, int]:
    """Train and test splits of ``data`` (registry name or ImageFolder path), labeled.

    Args:
        data: Dataset registry name or ImageFolder path.
        root: Root of a registry dataset on disk.
        test_fraction: Held-out share when ``data`` has no test split.
        seed: Seed of that split.
        seen: Images to leave out (the stream's training images), before the split.

    Returns:
        The splits and how many images were left out.
    """
    try:
        loaded = load_dataset(data, root)
    except ValueError as error:
        raise ValueError(f"--data: {error}") from None
    if not loaded.train.is_labeled:
        raise ValueError(f"--data '{data}' has unlabeled images: finetuning needs labels")
    dropped = 0
    if seen is not None:
        kept = []
        for split in (loaded.train, loaded.test):
            if split is None:
                kept.append(None)
                continue
            mask = seen.unseen(split)
            dropped += int((~mask).sum())
            kept.append(split.subset(mask.nonzero().flatten()))
        loaded = LoadedDataset(*kept)
        if not len(loaded.train):
            raise ValueError(
                f"--data '{data}': every training image is one the stream trained on; "
                "pass --data stream or another dataset"
            )
    if loaded.test is None:
        labels = loaded.train.labels.numpy()
        train, test = train_test_split(
            range(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
        )
        loaded = LoadedDataset(
            loaded.train.subset(torch.tensor(train)), loaded.train.subset(torch.tensor(test))
        )
    return loaded, dropped


def per_class_subset(dataset: ImageTensorDataset, per_class: int | None, seed: int):
    """``per_class`` seeded random images of every class (all of a smaller class)."""
    if per_class is None:
        return dataset
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=generator)
    keep = []
    for label in dataset.labels.unique():
        keep.append(order[dataset.labels[order] == label][:per_class])
    return dataset.subset(torch.cat(keep).sort().values)


def _rebuild_for(config: FinetuneConfig, **changes: Any) -> SSLStream:
    """The checkpoint's stream; a missing run config names the way out."""
    try:
        return rebuild_stream(config.checkpoint, **changes)
    except FileNotFoundError as error:
        fix = (
            "--data stream rebuilds the checkpoint's stream from it; pass --data NAME instead"
            if config.data == STREAM_DATA
            else "cannot tell which images the stream trained on; pass --no-leak-check to "
            "finetune anyway"
        )
        raise FileNotFoundError(f"{error}; {fix}") from None


def labeled_data(config: FinetuneConfig) -> LabeledData:
    """The head's labeled training and test images, none of them seen in SSL training."""
    if config.data == STREAM_DATA:
        stream = _rebuild_for(config)
        # A run evaluated on validation splits carved out of its training images never
        # touched its test splits: those of the same stream without the carve.
        tested = stream if stream.eval_split == "test" else _rebuild_for(config, val_fraction=0.0)
        pool = stream_test_set(tested)
        dropped = 0
        if config.leak_check:
            # A source may hold the same image twice, once in a train and once in a test split.
            mask = SeenImages.of_stream(stream).unseen(pool)
            dropped = int((~mask).sum())
            pool = pool.subset(mask.nonzero().flatten())
        train, test = split_per_class(
            pool, config.train_per_class, config.test_fraction, config.seed
        )
        source = f"the stream's test splits (never trained on): {len(pool):,} images"
        if dropped:
            source += f" ({dropped:,} copies of training images dropped)"
        return LabeledData(train, test, source, dropped)

    seen = SeenImages.of_stream(_rebuild_for(config)) if config.leak_check else None
    loaded, dropped = load_labeled(
        config.data, config.data_root, config.test_fraction, config.seed, seen
    )
    name = Path(config.data).name
    if seen is None:
        source = f"{name} (not checked against the stream's training images: --no-leak-check)"
    else:
        source = f"{name} minus {dropped:,} images the stream trained on"
    train = per_class_subset(loaded.train, config.train_per_class, config.seed)
    return LabeledData(train, loaded.test, source, dropped)


@torch.no_grad()
def _features(encoder: nn.Module, dataset: ImageTensorDataset, device: str) -> torch.Tensor:
    chunks = [encoder(images.to(device)).cpu() for images in image_batches(dataset, 512)]
    return torch.cat(chunks)


def finetune(config: FinetuneConfig) -> FinetuneReport:
    """Train the MLP head on frozen features and report on the test split."""
    from cl_ssl.strategy_run import resolve_device

    device = str(resolve_device(config.device))
    encoder = load_encoder(config.checkpoint).to(device)
    data = labeled_data(config)
    train = data.train
    if not len(train) or not len(data.test):
        raise ValueError(
            f"labeled data ({data.source}) gives {len(train)} training and {len(data.test)} "
            "test images: use a larger stream or --data NAME"
        )
    classes = sorted(set(train.labels.tolist()) | set(data.test.labels.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    x_train, x_test = (
        _features(encoder, train, device),
        _features(encoder, data.test, device),
    )
    y_train = torch.tensor([index[c] for c in train.labels.tolist()])
    y_test = [index[c] for c in data.test.labels.tolist()]

    torch.manual_seed(config.seed)
    # One training image has no spread (NaN std): scale by 1 rather than poison the head.
    mean, std = x_train.mean(0), torch.nan_to_num(x_train.std(0), nan=1.0).clamp_min(1e-6)
    head = nn.Sequential(
        nn.Linear(x_train.shape[1], config.hidden_dim),
        nn.ReLU(),
        nn.Linear(config.hidden_dim, len(classes)),
    )
    optimizer = torch.optim.Adam(head.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        for batch in torch.randperm(len(x_train), generator=generator).split(config.batch_size):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(head((x_train[batch] - mean) / std), y_train[batch])
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        predicted = head((x_test - mean) / std).argmax(1).tolist()

    names = data.train.label_names
    target_names = [names[c] if c < len(names) else str(c) for c in classes]
    kwargs = dict(labels=list(range(len(classes))), target_names=target_names, zero_division=0)
    table = pd.DataFrame(classification_report(y_test, predicted, output_dict=True, **kwargs)).T
    text = classification_report(y_test, predicted, digits=4, **kwargs)
    return FinetuneReport(table, text, len(train), len(data.test), data.source, data.dropped)
