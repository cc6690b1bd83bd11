from pathlib import Path

import pytest
from cl_ssl.benchmarks.dataset_pair import dataset_pair, parse_dataset_specs

from cl_ssl.streams import StreamOptions


def test_grayscale_and_colour_datasets_share_one_format(digit_folder):
    stream = dataset_pair(StreamOptions(datasets=f"digits,{digit_folder}", image_size=12))
    first, second = stream.experiences
    assert first.name == "digits" and second.name == "digits"
    for experience in stream.experiences:
        assert experience.train[0][0].shape == (3, 12, 12)
    # The bundled digits (1,797) and the 300 written files each keep their own split.
    assert len(first.train) + len(first.test) == 1797
    assert len(second.train) + len(second.test) == 300


def test_cifar10_then_fashion_mnist(cifar10_root, fashion_mnist_root):
    stream = dataset_pair(
        StreamOptions(datasets=f"cifar10={cifar10_root},fashion-mnist", max_images=90)
    )
    assert [e.train[0][0].shape for e in stream.experiences] == [(3, 32, 32)] * 2
    assert [len(e.test) for e in stream.experiences] == [10, 10]


def test_specs_and_errors():
    assert parse_dataset_specs("cifar10=/x, b", None) == [("cifar10", Path("/x")), ("b", None)]
    with pytest.raises(ValueError, match="pair needs --datasets A,B"):
        dataset_pair(StreamOptions(datasets="digits"))


def test_name_equals_folder_says_a_folder_is_a_bare_path(digit_folder, tmp_path):
    """``a=DIR,b=DIR2`` (an unknown name before '='): refused before anything is read."""
    from typer.testing import CliRunner

    from cl_ssl.cli import app
    from cl_ssl.registry import datasets

    out = tmp_path / "runs"
    result = CliRunner().invoke(
        app,
        ["bench", "--stream", "pair", "--datasets", f"a={digit_folder},digits,b={tmp_path}",
         "--out", str(out), "--run", "p", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: --datasets a={digit_folder}: NAME=ROOT takes a registered dataset name "
        f"({', '.join(datasets.names())}), not 'a'; give a folder as a bare path: "
        f"--datasets {digit_folder},digits,{tmp_path}"
    ]
    assert not out.exists()
