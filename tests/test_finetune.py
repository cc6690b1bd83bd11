import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from cl_ssl.cli import app
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.finetune import (
    FinetuneConfig,
    SeenImages,
    finetune,
    labeled_data,
    load_labeled,
    per_class_subset,
    split_per_class,
    stream_test_set,
)
from cl_ssl.streams import ExperienceData, SSLStream, StreamOptions

TINY = StreamOptions(image_size=8, max_images=40)


def write_run(directory: Path, stream: str, options: StreamOptions, config=True) -> Path:
    """A strategy run directory as the bench leaves it: config.json and a checkpoint.

    ``config="checkpoint"``: the configuration only inside the checkpoint (as the bench
    also writes it), no config.json. The model is untrained: what these tests check is which
    images the head sees.
    """
    from cl_ssl.augment import AugmentConfig
    from cl_ssl.bench import build_model
    from cl_ssl.checkpoint import CheckpointInfo, save_checkpoint
    from cl_ssl.config import EvalConfig, TrainConfig

    train = TrainConfig(device="cpu")
    if config:
        payload = {
            "stream": stream,
            "stream_options": {
                k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()
            },
            "train": asdict(train),
            "evaluation": asdict(EvalConfig()),
            "strategy": "naive",
            "strategy_options": {},
            "split_seed": 0,
            "eval_split": "test",
        }
        directory.mkdir(parents=True, exist_ok=True)
        if config != "checkpoint":
            (directory / "config.json").write_text(json.dumps(payload))
    torch.manual_seed(0)
    model, _ = build_model(train, 8)
    info = CheckpointInfo(train.backbone, train.method, 8, "naive", 4, 0)
    return save_checkpoint(
        directory / "checkpoints" / "exp4.pt",
        model,
        info,
        AugmentConfig(input_size=8),
        config=payload if config == "checkpoint" else None,
    )


def training_images(stream: str, options: StreamOptions) -> set[bytes]:
    """Naive reference: the raw bytes of every image the stream trains on."""
    from cl_ssl.registry import streams

    built = streams.get(stream)(options)
    return {image.numpy().tobytes() for e in built.experiences for image in e.train.images}


def raw(dataset) -> list[bytes]:
    return [image.numpy().tobytes() for image in dataset.images]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ft" / "naive" / "seed0"
    return write_run(run, "digits-periods", TINY)


def test_stream_data_holds_no_image_the_stream_trained_on(checkpoint):
    data = labeled_data(FinetuneConfig(checkpoint, train_per_class=2))
    seen = training_images("digits-periods", TINY)
    # 5 periods of 40 images, 36 train + 4 test each: the head gets the 20 test images.
    assert len(data.train) + len(data.test) == 20 and len(data.train) > 0 and len(data.test) > 0
    assert not seen & set(raw(data.train)) and not seen & set(raw(data.test))
    assert not set(raw(data.train)) & set(raw(data.test))
    assert data.source == "the stream's test splits (never trained on): 20 images"


def test_a_run_tuned_on_validation_splits_gives_its_untouched_test_splits(tmp_path):
    from dataclasses import replace

    options = replace(TINY, val_fraction=0.25)
    checkpoint = write_run(tmp_path / "run", "digits-periods", options)
    data = labeled_data(FinetuneConfig(checkpoint, train_per_class=2))
    plain = labeled_data(FinetuneConfig(write_run(tmp_path / "plain", "digits-periods", TINY)))
    pooled = set(raw(data.train)) | set(raw(data.test))
    assert pooled == set(raw(plain.train)) | set(raw(plain.test)) and len(pooled) == 20
    assert not pooled & training_images("digits-periods", options)


def test_a_separate_set_loses_exactly_the_streams_training_images(checkpoint):
    config = FinetuneConfig(checkpoint, data="digits", train_per_class=None)
    data = labeled_data(config)
    seen = training_images("digits-periods", TINY)
    # digits-periods takes sklearn's digits unchanged, 36 training images per period.
    assert data.dropped == len(seen) == 180
    assert len(data.train) + len(data.test) == 1797 - 180
    assert not seen & set(raw(data.train)) and not seen & set(raw(data.test))
    assert data.source == "digits minus 180 images the stream trained on"


def test_images_the_stream_resized_are_recognised(tmp_path):
    # pair resizes its sources (8 -> 16 px): a leak check on raw bytes alone would miss them.
    options = StreamOptions(image_size=16, max_images=40, datasets="digits,digits")
    checkpoint = write_run(tmp_path / "run", "pair", options)
    data = labeled_data(FinetuneConfig(checkpoint, data="digits", train_per_class=None))
    seen = training_images("pair", options)
    assert data.dropped == len(seen) > 0
    assert len(data.train) + len(data.test) == 1797 - len(seen)


def test_image_files_the_stream_decoded_at_another_size_are_recognised(tmp_path, digit_folder):
    # The stream decodes the 32 px JPEGs at 16 px (at a reduced DCT scale); the labeled set
    # loads them at 32 px: only decoding them again at 16 px gives the stream's pixels (a
    # resize of the 32 px pixels would not), as with CIFAR-10's JPEGs in the pair stream.
    from PIL import Image

    folder = tmp_path / "jpegs"
    for png in digit_folder.rglob("*.png"):
        jpeg = folder / png.parent.name / (png.stem + ".jpg")
        jpeg.parent.mkdir(parents=True, exist_ok=True)
        Image.open(png).resize((32, 32), Image.Resampling.NEAREST).save(jpeg, quality=90)
    options = StreamOptions(image_size=16, max_images=40, datasets=f"{folder},digits")
    checkpoint = write_run(tmp_path / "run", "pair", options)
    config = FinetuneConfig(checkpoint, data=str(folder), train_per_class=None)
    data = labeled_data(config)
    from cl_ssl.registry import streams

    trained = len(streams.get("pair")(options).experiences[0].train)  # the folder's part
    assert data.dropped == trained > 0
    assert len(data.train) + len(data.test) == 300 - trained
    assert data.source == f"jpegs minus {trained} images the stream trained on"


def test_report_says_where_the_labeled_data_came_from(checkpoint):
    report = finetune(FinetuneConfig(checkpoint, data="digits", train_per_class=30, epochs=5))
    table = report.table
    assert [str(c) for c in range(10)] == list(table.index[:10])
    assert {"accuracy", "macro avg", "weighted avg"} <= set(table.index)
    assert {"precision", "recall", "f1-score", "support"} <= set(table.columns)
    assert report.train_images == 300 and table.loc["macro avg", "support"] == report.test_images
    assert report.dropped == 180 and report.source.startswith("digits minus 180")
    assert "macro avg" in report.text


def test_cli_defaults_to_the_stream_and_saves_the_report_as_csv(checkpoint, tmp_path):
    csv = tmp_path / "report.csv"
    result = CliRunner().invoke(
        app,
        ["finetune", "--checkpoint", str(checkpoint), "--epochs", "5", "--device", "cpu"]
        + ["--out", str(csv)],
    )
    assert result.exit_code == 0, result.output
    assert "labeled data: the stream's test splits (never trained on): 20 images" in result.output
    assert "precision" in result.output
    table = pd.read_csv(csv, index_col="class")
    assert table.loc["weighted avg", "support"] > 0


def test_a_missing_run_config_fails_unless_the_leak_check_is_off(tmp_path):
    checkpoint = write_run(tmp_path / "run", "digits-periods", TINY, config=False)
    args = ["finetune", "--checkpoint", str(checkpoint), "--epochs", "2", "--device", "cpu"]
    for data, fix in (("stream", "pass --data NAME"), ("digits", "pass --no-leak-check")):
        result = CliRunner().invoke(app, [*args, "--data", data])
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: no config.json or results.json")
        assert fix in lines[0]
    result = CliRunner().invoke(app, [*args, "--data", "digits", "--no-leak-check"])
    assert result.exit_code == 0, result.output
    assert "labeled data: digits (not checked against the stream's training images" in (
        result.output
    )


def test_a_checkpoint_copied_out_of_its_run_uses_the_configuration_it_holds(tmp_path):
    """No config.json beside it: the checkpoint's own copy rebuilds the stream."""
    import shutil

    written = write_run(tmp_path / "run", "digits-periods", TINY, config="checkpoint")
    copied = shutil.copy(written, tmp_path / "exp4.pt")
    shutil.rmtree(tmp_path / "run")
    args = ["finetune", "--checkpoint", str(copied), "--epochs", "2", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "labeled data: the stream's test splits (never trained on): 20 images" in result.output
    assert (tmp_path / "exp4-finetune-stream.csv").is_file()
    # The leak check drops the stream's training images from a separate set, as in the run.
    result = CliRunner().invoke(app, [*args, "--data", "digits"])
    assert result.exit_code == 0, result.output
    assert "labeled data: digits minus 180 images the stream trained on" in result.output


def test_a_run_config_without_stream_options_is_refused(tmp_path):
    checkpoint = write_run(tmp_path / "run", "digits-periods", TINY)
    payload = json.loads((tmp_path / "run" / "config.json").read_text())
    del payload["stream_options"]
    (tmp_path / "run" / "results.json").write_text(json.dumps(payload))
    (tmp_path / "run" / "config.json").unlink()
    with pytest.raises(ValueError, match="does not record the stream options"):
        labeled_data(FinetuneConfig(checkpoint))


def test_classes_of_different_domains_get_distinct_ids():
    def experience(domain: str) -> ExperienceData:
        images = torch.full((4, 1, 2, 2), ord(domain[0]), dtype=torch.uint8)
        split = ImageTensorDataset(images, torch.tensor([0, 1, 0, 1]), ("cat", "dog"))
        data = ExperienceData(domain, split, split)
        data.domain = domain  # the field streams set to the source dataset's name
        return data

    two = SSLStream("s", None, [experience("a"), experience("b")], 2)
    pooled = stream_test_set(two)
    assert pooled.labels.tolist() == [0, 1, 0, 1, 2, 3, 2, 3]
    assert pooled.label_names == ("a/cat", "a/dog", "b/cat", "b/dog")
    for e in two.experiences:
        e.domain = ""  # no domain: labels are already global
    assert stream_test_set(two).labels.tolist() == [0, 1, 0, 1] * 2
    assert SeenImages.of_stream(two).unseen(pooled).sum() == 0


def test_split_per_class_keeps_a_share_of_every_class_for_testing():
    labels = torch.tensor([0] * 10 + [1] * 3 + [2])
    dataset = ImageTensorDataset(torch.arange(14, dtype=torch.uint8).view(14, 1, 1, 1), labels)
    train, test = split_per_class(dataset, per_class=100, test_fraction=0.2, seed=0)
    assert train.labels.bincount().tolist() == [8, 2, 1]
    assert test.labels.bincount(minlength=3).tolist() == [2, 1, 0]
    train, _ = split_per_class(dataset, per_class=1, test_fraction=0.2, seed=0)
    assert train.labels.tolist() == [0, 1, 2]
    assert not set(raw(train)) & set(raw(test))


def test_split_is_stratified_and_subset_is_per_class():
    data, dropped = load_labeled("digits", None, 0.2, seed=0)
    assert dropped == 0
    assert set(data.train.labels.tolist()) == set(data.test.labels.tolist()) == set(range(10))
    assert abs(len(data.test) - 0.2 * 1797) < 2
    subset = per_class_subset(data.train, 7, seed=0)
    assert subset.labels.bincount().tolist() == [7] * 10


def test_unknown_data_is_named(checkpoint):
    result = CliRunner().invoke(
        app, ["finetune", "--checkpoint", str(checkpoint), "--data", "nope"]
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: --data: dataset 'nope' is neither a known dataset")


def test_a_folder_with_an_unreadable_first_file_or_an_empty_class(checkpoint, tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(10):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"img{i}.png")
    (tmp_path / "cat" / "a.jpg").write_text("not an image")  # the first file of the tree
    args = ["finetune", "--checkpoint", str(checkpoint), "--epochs", "2", "--device", "cpu"]
    args += ["--data", str(tmp_path), "--out", str(tmp_path / "report.csv")]
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "labeled data: " in result.output and "precision" in result.output
    (tmp_path / "bird").mkdir()
    result = CliRunner().invoke(app, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith(f"error: no images in {tmp_path / 'bird'}/ (expected *.jpg")
