"""Downstream finetune: a frozen embedding, an MLP head, a small labeled set, a report.

The seed's Experiment 2. The encoder of a checkpoint is frozen, so its features are
computed once; an MLP head (Linear - ReLU - Linear) is trained on the features of
``train_per_class`` labeled images per class, and scikit-learn's classification report
(per-class precision, recall, F1 and support; accuracy; macro and weighted averages) is
computed on the test split.

Data: a dataset registry name (``digits``, ``cifar10`` with ``--data-root``, ...) or a
folder in ImageFolder layout (``DIR/<class>/*.jpg``, or ``DIR/{train,test}/<class>/*.jpg``).
Without a test split, a stratified, seeded 20% of the images is held out.

Example:
    >>> report = finetune(FinetuneConfig(checkpoint=Path("runs/x/lwf-ssl/checkpoints/exp4.pt"),
    ...                                  data="digits"))
    >>> report.table.loc["accuracy", "f1-score"]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from sklearn.metrics import classification_report
from sklearn.model_selection import train_test_split
from torch import nn

from cl_ssl.checkpoint import load_encoder
from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.data.resolve import load_dataset


@dataclass(frozen=True)
class FinetuneConfig:
    """A downstream finetune (``clssl finetune`` flags map onto the fields).

    Attributes:
        checkpoint: A ``checkpoints/exp<k>.pt`` file written by ``clssl bench``.
        data: Dataset registry name or ImageFolder path.
        data_root: Root for registry datasets that read from disk (e.g. cifar10).
        train_per_class: Labeled training images per class (None: the whole train split).
        test_fraction: Held-out share when the data has no test split.
        hidden_dim: Hidden width of the MLP head.
        epochs: Passes over the labeled features.
        batch_size: Feature batch size of the head's training.
        lr: Adam learning rate of the head.
        seed: Seed of the subset, the split and the head's initialisation.
        device: Where the encoder runs.
    """

    checkpoint: Path
    data: str
    data_root: Path | None = None
    train_per_class: int | None = 100
    test_fraction: float = 0.2
    hidden_dim: int = 256
    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"


@dataclass
class FinetuneReport:
    """The classification report as a table (rows: classes, accuracy, averages) and text."""

    table: pd.DataFrame
    text: str
    train_images: int
    test_images: int


def load_labeled(data: str, root: Path | None, test_fraction: float, seed: int) -> LoadedDataset:
    """Train and test splits of ``data`` (registry name or ImageFolder path), labeled."""
    try:
        loaded = load_dataset(data, root)
    except ValueError as error:
        raise ValueError(f"--data: {error}") from None
    if not loaded.train.is_labeled:
        raise ValueError(f"--data '{data}' has unlabeled images: finetuning needs labels")
    if loaded.test is None:
        labels = loaded.train.labels.numpy()
        train, test = train_test_split(
            range(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
        )
        loaded = LoadedDataset(
            loaded.train.subset(torch.tensor(train)), loaded.train.subset(torch.tensor(test))
        )
    return loaded


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


@torch.no_grad()
def _features(encoder: nn.Module, dataset: ImageTensorDataset, device: str) -> torch.Tensor:
    chunks = [
        encoder(dataset.images[i : i + 512].to(device)).cpu() for i in range(0, len(dataset), 512)
    ]
    return torch.cat(chunks)


def finetune(config: FinetuneConfig) -> FinetuneReport:
    """Train the MLP head on frozen features and report on the test split."""
    encoder = load_encoder(config.checkpoint).to(config.device)
    data = load_labeled(config.data, config.data_root, config.test_fraction, config.seed)
    train = per_class_subset(data.train, config.train_per_class, config.seed)
    classes = sorted(set(train.labels.tolist()) | set(data.test.labels.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    x_train, x_test = (
        _features(encoder, train, config.device),
        _features(encoder, data.test, config.device),
    )
    y_train = torch.tensor([index[c] for c in train.labels.tolist()])
    y_test = [index[c] for c in data.test.labels.tolist()]

    torch.manual_seed(config.seed)
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-6)
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
    return FinetuneReport(table, text, len(train), len(data.test))
