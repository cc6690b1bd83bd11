from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cl_ssl.data.image_folder import TooManyBadImagesError, load_cifar10, load_image_folder


def make_folder(root: Path, per_class: int = 3, size: int = 10) -> Path:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_decodes_labels_by_sorted_folder(tmp_path):
    data = load_image_folder(make_folder(tmp_path)).load()
    assert data.images.shape == (6, 3, 10, 10)
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1] and data.label_names == ("cat", "dog")


def test_resizes_and_selects_classes(tmp_path):
    data = load_image_folder(make_folder(tmp_path), size=4, classes=["dog"], max_per_class=2)
    data = data.load()
    assert data.images.shape == (2, 3, 4, 4) and data.labels.tolist() == [1, 1]


def test_corrupt_image_is_skipped_with_a_warning(tmp_path):
    root = make_folder(tmp_path, per_class=30)
    (root / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        data = load_image_folder(root)
    assert len(data) == 60


def test_too_many_corrupt_images_abort(tmp_path):
    root = make_folder(tmp_path, per_class=1)
    (root / "cat" / "broken.jpg").write_bytes(b"junk")
    with pytest.raises(TooManyBadImagesError, match="1 of 3 images are unreadable"):
        load_image_folder(root)


def test_missing_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass --data-root"):
        load_image_folder(tmp_path / "nope")


def test_cifar10_needs_a_root():
    with pytest.raises(FileNotFoundError, match="CIFAR-10 needs --data-root"):
        load_cifar10(None)
