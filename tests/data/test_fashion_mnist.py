import gzip

import numpy as np
import pytest

from cl_ssl.data.fashion_mnist import load_fashion_mnist, read_idx


def test_reads_the_debian_files(fashion_mnist_root):
    data = load_fashion_mnist(fashion_mnist_root)
    assert data.train.images.shape == (60000, 1, 28, 28) and len(data.test) == 10000
    assert data.train.labels.bincount().tolist() == [6000] * 10
    assert data.train.label_names[9] == "Ankle boot"


def test_idx_format_round_trip_and_truncation(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    header = b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    (tmp_path / "x.gz").write_bytes(gzip.compress(header + array.tobytes()))
    assert np.array_equal(read_idx(tmp_path / "x.gz"), array)
    (tmp_path / "cut").write_bytes(header + array.tobytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "cut")


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)
