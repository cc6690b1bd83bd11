"""The torchvision-backed loaders read only local copies and name what is missing."""

import numpy as np
import pytest

from cl_ssl.data.torchvision_sets import load_celeba, load_stl10


@pytest.mark.parametrize("loader", [load_stl10, load_celeba])
def test_missing_root_or_data_is_named_and_nothing_is_downloaded(loader, tmp_path):
    with pytest.raises(ValueError, match="needs --data-root"):
        loader(None)
    with pytest.raises(FileNotFoundError, match=f"not found under {tmp_path}: expected ROOT/"):
        loader(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no download attempted


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
