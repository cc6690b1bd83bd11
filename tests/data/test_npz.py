import numpy as np
import pytest
import torch

from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.data.npz import load_npz, save_npz
from cl_ssl.data.resolve import load_dataset
from cl_ssl.registry import streams
from cl_ssl.streams import StreamOptions

NAMES = tuple(f"c{i}" for i in range(10))


def packed(tmp_path, per_class=2, test_per_class=1):
    """A ten-class CIFAR-like file; each image's pixels encode its class and index."""

    def split(n):
        labels = torch.arange(10).repeat_interleave(n)
        images = torch.zeros(len(labels), 3, 8, 8, dtype=torch.uint8)
        images[:, 0] = labels.view(-1, 1, 1).to(torch.uint8)
        images[:, 1] = torch.arange(len(labels)).view(-1, 1, 1).to(torch.uint8)
        return ImageTensorDataset(images, labels, NAMES)

    path = tmp_path / "small.npz"
    save_npz(path, LoadedDataset(split(per_class), split(test_per_class)))
    return path


def test_round_trip_keeps_pixels_labels_and_names(tmp_path):
    data = load_npz(packed(tmp_path))
    assert data.train.images.shape == (20, 3, 8, 8) and data.test.images.shape == (10, 3, 8, 8)
    assert data.train.images.dtype == torch.uint8
    assert data.train.labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert (data.train.images[:, 0, 0, 0] == data.train.labels).all()
    assert data.train.images[:, 1, 0, 0].tolist() == list(range(20))
    assert data.train.label_names == NAMES and data.test.label_names == NAMES


def test_train_only_file_has_no_test_split(tmp_path):
    images = torch.zeros(4, 1, 5, 5, dtype=torch.uint8)
    train = ImageTensorDataset(images, torch.tensor([0, 1] * 2))
    save_npz(tmp_path / "t.npz", LoadedDataset(train))
    data = load_npz(tmp_path / "t.npz")
    assert data.test is None and data.train.label_names == () and data.train.channels == 1


def test_every_reader_of_cifar10_accepts_the_file(tmp_path):
    path = packed(tmp_path)
    for data in (load_dataset("npz", path), load_dataset("cifar10", path), load_dataset(str(path))):
        assert len(data.train) == 20 and len(data.test) == 10
    stream = streams.get("cifar10-split")(StreamOptions(data_root=path))
    first = stream.experiences[0]
    assert first.name == "c0+c1"
    assert sorted(first.train.labels.tolist()) == [0, 0, 1, 1]
    assert sorted(first.test.labels.tolist()) == [0, 1]


def test_a_file_without_images_or_a_missing_file_names_the_problem(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="needs train_images and train_labels"):
        load_npz(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="examples/gpu_data.py"):
        load_npz(tmp_path / "absent.npz")
