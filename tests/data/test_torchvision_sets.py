"""The torchvision-backed loaders read only local copies and name what is missing."""

import numpy as np
import pytest

from cl_ssl.data.torchvision_sets import load_celeba, load_cifar100, load_stl10
from cl_ssl.registry import datasets


@pytest.mark.parametrize("loader", [load_stl10, load_celeba, load_cifar100])
def test_missing_root_or_data_is_named_and_nothing_is_downloaded(loader, tmp_path):
    with pytest.raises(ValueError, match=r"needs --data-root .* \(nothing is downloaded\)$"):
        loader(None)
    with pytest.raises(FileNotFoundError) as error:
        loader(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{loader.__name__[5:]} not found under {tmp_path}: expected ROOT/")
    assert message.endswith("(nothing is downloaded)") and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # no download attempted


def test_cifar100_reads_torchvisions_pickles_exactly(tmp_path, write_cifar100):
    labels = {"train": [7, 99, 0, 7], "test": [99, 3]}
    names, images = write_cifar100(tmp_path, labels)
    data = datasets.get("cifar100")(tmp_path)
    for split, dataset in (("train", data.train), ("test", data.test)):
        assert dataset.images.shape == (len(labels[split]), 3, 32, 32)
        assert np.array_equal(dataset.images.numpy(), images[split])
        assert dataset.labels.tolist() == labels[split]
        assert dataset.label_names == tuple(names) and len(dataset.label_names) == 100


def test_cifar100_root_must_hold_the_folder_not_be_it(tmp_path, write_cifar100):
    write_cifar100(tmp_path, {"train": [1], "test": [2]})
    inner = tmp_path / "cifar-100-python"
    with pytest.raises(
        FileNotFoundError,
        match=f"looks like cifar-100-python/ itself, so pass its parent {tmp_path} ",
    ):
        load_cifar100(inner)
    (inner / "meta").unlink()
    with pytest.raises(FileNotFoundError, match=f"cifar100 not found under {tmp_path}"):
        load_cifar100(tmp_path)


def test_stl10_reads_torchvisions_binary_layout(tmp_path):
    """A two-image copy of STL-10's binary format (column-major 3x96x96, labels 1-10)."""
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 3, 96, 96), dtype=np.uint8)
    for split, labels in (("train", [1, 10]), ("test", [3, 4])):
        images.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")
        np.array(labels, dtype=np.uint8).tofile(folder / f"{split}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    data = load_stl10(tmp_path)
    assert data.train.images.shape == (2, 3, 96, 96)
    assert np.array_equal(data.train.images.numpy(), images)
    assert data.train.labels.tolist() == [0, 9] and data.test.labels.tolist() == [2, 3]
