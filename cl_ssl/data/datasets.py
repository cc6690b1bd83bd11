"""The dataset registry's contract: a loader returns a train set and, if any, a test set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cl_ssl.data.files import ImageDataset


@dataclass
class LoadedDataset:
    """A dataset's splits (in memory or disk-backed); ``test`` is None without a test split."""

    train: ImageDataset
    test: ImageDataset | None = None

    @property
    def skipped(self) -> int:
        """Unreadable files left out of both splits while loading."""
        return self.train.skipped + (self.test.skipped if self.test is not None else 0)


class DatasetLoader(Protocol):
    """Registered with ``@register_dataset(name)``; ``root`` is None for built-in data."""

    def __call__(self, root: Path | None) -> LoadedDataset: ...
