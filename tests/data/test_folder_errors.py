"""Image folders as a new user gets them wrong: each case ends in one line naming the fix."""

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cl_ssl.cli import app
from cl_ssl.data.image_folder import (
    EXPECTED_FILES,
    NoImagesError,
    TooManyBadImagesError,
    decode_images,
    load_image_folder,
)
from cl_ssl.data.resolve import harmonise, load_dataset


def write_images(folder: Path, count: int, size: int = 10) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")


@pytest.fixture
def first_file_bad(tmp_path) -> Path:
    """20 good 10 px images in two classes; the first file of all, a.jpg, is text."""
    root = tmp_path / "pets"
    for name in ("cat", "dog"):
        write_images(root / name, 10)
    (root / "cat" / "a.jpg").write_text("not an image")
    return root


def test_an_unreadable_first_file_is_skipped_and_counted(first_file_bad):
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        data = load_image_folder(first_file_bad)
    assert len(data) == 20 and data.skipped == 1
    # The size of the first readable image:
    assert data.image_size == 10 and data[0][0].shape == (3, 10, 10)
    with pytest.warns(UserWarning, match="skipped 1"):
        loaded = load_dataset(str(first_file_bad))
    assert loaded.skipped == 1 and harmonise(loaded.train, 8, 3).skipped == 1
    assert loaded.train.subset(data.labels == 0).skipped == 0  # parts never count twice


def test_a_folder_without_one_readable_image_is_named(tmp_path):
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.jpg").write_text("text")
    expected = re.escape(f"none of the 2 image files under {tmp_path} is a readable image")
    with pytest.raises(TooManyBadImagesError, match=expected):
        load_image_folder(tmp_path)
    with pytest.raises(TooManyBadImagesError, match="is a readable image"):
        decode_images([tmp_path / "cat" / "a.jpg"], size=8, max_bad_fraction=1.0)


@pytest.mark.parametrize(
    ("layout", "empty_class", "holds"),
    [
        ({"cat": [], "dog": []}, "cat", "it is empty"),
        ({"cat": ["notes.txt"]}, "cat", "it holds notes.txt"),
        ({"cat": ["x.png"], "dog": ["sub/"]}, "dog", "it holds sub/"),
        ({}, None, "it is empty"),
        ({"readme.txt": None}, None, "it holds readme.txt"),
        ({".ipynb_checkpoints": []}, None, "it is empty"),
    ],
)
def test_a_folder_without_images_names_the_folder_and_what_it_needs(
    tmp_path, layout, empty_class, holds
):
    root = tmp_path / "data"
    root.mkdir()
    for name, files in layout.items():
        if files is None:
            (root / name).write_text("x")
            continue
        (root / name).mkdir()
        for file in files:
            if file.endswith("/"):
                (root / name / file).mkdir()
            elif file.endswith(".png"):
                write_images(root / name, 1)
            else:
                (root / name / file).write_text("x")
    with pytest.raises(NoImagesError) as error:
        load_image_folder(root)
    if empty_class:
        expected = (
            f"no images in {root}/{empty_class}/ (expected {EXPECTED_FILES}; {holds}): "
            "add images or remove the folder"
        )
    else:
        expected = (
            f"no class folders in {root} ({holds}): expected {root}/<class>/ folders of "
            "images, one per class"
        )
    assert str(error.value) == expected
    assert isinstance(error.value, FileNotFoundError)  # the CLI reports these in one line


def cli_lines(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output.strip().splitlines()


@pytest.mark.parametrize("case", ["empty-class", "no-classes", "unreadable"])
def test_bench_on_a_bad_folder_fails_in_one_line(tmp_path, case):
    root = tmp_path / "data"
    (root / "cat").mkdir(parents=True)
    if case == "empty-class":
        write_images(root / "dog", 3)
        expected = f"error: no images in {root}/cat/ (expected *.jpg"
    elif case == "no-classes":
        (root / "cat").rmdir()
        expected = f"error: no class folders in {root} (it is empty)"
    else:
        (root / "cat" / "a.jpg").write_text("text")
        expected = f"error: none of the 1 image files under {root / 'cat'} is a readable image"
    for stream, flag in (("split", "--dataset"), ("pair", "--datasets")):
        value = str(root) if stream == "split" else f"{root},digits"
        code, lines = cli_lines(
            "bench", "--stream", stream, flag, value, "--out", str(tmp_path / "runs"),
            "--no-progress", "--device", "cpu",
        )  # fmt: skip
        assert code == 2 and len(lines) == 1 and lines[0].startswith(expected), lines
