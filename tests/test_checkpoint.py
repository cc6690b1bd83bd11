import os
import re
import stat
from pathlib import Path

import pandas as pd
import pytest
import torch

from cl_ssl.augment import AugmentConfig
from cl_ssl.checkpoint import CheckpointInfo, load_encoder, load_model, save_checkpoint
from cl_ssl.config import TrainConfig


def test_encoder_round_trip_gives_the_trained_backbones_features(
    tiny_stream, make_template, tmp_path
):
    strategy = make_template(tiny_stream)
    strategy.train(tiny_stream.benchmark.train_stream[0], eval_streams=[])
    info = CheckpointInfo("small_resnet", "simclr", 8, "naive", 0, 0)
    path = save_checkpoint(tmp_path / "exp0.pt", strategy.model, info, strategy.augment.config)
    assert not list(tmp_path.glob("*.partial"))
    encoder = load_encoder(path)
    images = tiny_stream.experiences[0].test.images
    strategy.model.eval()
    with torch.no_grad():
        expected = strategy.model.backbone(strategy.augment.eval_view(images))
        torch.testing.assert_close(encoder(images), expected)
    assert encoder.info == info and not encoder.training
    model, _, _ = load_model(path)
    for (name, a), b in zip(
        strategy.model.state_dict().items(), model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_bench_writes_one_checkpoint_per_experience(tiny_bench):
    from cl_ssl.bench import run_bench

    result = run_bench(tiny_bench()).strategies[0]
    names = sorted(p.name for p in (result.directory / "checkpoints").iterdir())
    assert names == [f"exp{k}.pt" for k in range(5)]
    assert load_encoder(result.directory / "checkpoints" / "exp2.pt").info.experience == 2


def test_missing_and_foreign_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_encoder(tmp_path / "nope.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a cl-ssl checkpoint"):
        load_encoder(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(ValueError, match="not a cl-ssl checkpoint"):
        load_encoder(tmp_path / "junk.pt")


def test_weights_that_do_not_fit_the_recorded_backbone_are_one_line(tiny_bench, tmp_path):
    from dataclasses import asdict

    from typer.testing import CliRunner

    from cl_ssl.bench import run_bench
    from cl_ssl.cli import app

    result = run_bench(tiny_bench()).strategies[0]
    payload = torch.load(result.directory / "checkpoints" / "exp0.pt", weights_only=True)
    wrong = tmp_path / "mixed-up.pt"
    # The same file claiming another backbone: every weight shape disagrees.
    torch.save({**payload, "info": {**payload["info"], "backbone": "resnet18"}}, wrong)
    with pytest.raises(ValueError, match="its weights do not fit its recorded backbone 'resnet18'"):
        load_encoder(wrong)
    run = CliRunner().invoke(app, ["finetune", "--checkpoint", str(wrong), "--no-leak-check"])
    assert run.exit_code == 2
    assert len(run.output.strip().splitlines()) == 1, run.output
    assert asdict(load_encoder(result.directory / "checkpoints" / "exp0.pt").info)["seed"] == 0


def test_a_checkpoint_is_on_disk_before_its_rename_is_trusted(tmp_path, monkeypatch):
    # fsync of the file's data, then the rename, then fsync of the folder holding the rename:
    # a lost machine leaves the previous checkpoint or this one whole, never an empty file.
    from cl_ssl.bench import build_model

    model, _ = build_model(TrainConfig(), 8)
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        status = os.fstat(descriptor)
        events.append(("fsync", "folder" if stat.S_ISDIR(status.st_mode) else status.st_ino))
        real_fsync(descriptor)

    def replace(source, target):
        events.append(("rename", Path(target).name))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    info = CheckpointInfo("small_resnet", "simclr", 8, "naive", 0, 0)
    path = save_checkpoint(tmp_path / "exp0.pt", model, info, AugmentConfig(input_size=8))
    assert events == [("fsync", path.stat().st_ino), ("rename", "exp0.pt"), ("fsync", "folder")]


def test_a_truncated_checkpoint_is_named_and_resume_goes_on_once_it_is_deleted(tiny_bench):
    from cl_ssl.bench import run_bench

    config = tiny_bench()
    directory = run_bench(config).strategies[0].directory
    expected = pd.read_csv(directory / "metrics.csv")
    # As if the machine died while exp4.pt was written and before the run finished.
    (directory / "results.json").unlink()
    last = directory / "checkpoints" / "exp4.pt"
    last.write_bytes(last.read_bytes()[:5000])
    advice = "truncated or corrupt .*: delete it; `clssl bench --resume` then goes on from the"
    with pytest.raises(ValueError, match=f"{last} is {advice}"):
        load_encoder(last)
    failed = run_bench(config, resume=True)
    assert re.search(advice, failed.failures[0].message), failed.failures[0].message

    last.unlink()  # what the message says to do
    resumed = run_bench(config, resume=True)
    assert resumed.ok
    pd.testing.assert_frame_equal(pd.read_csv(directory / "metrics.csv"), expected)
    assert load_encoder(last).info.experience == 4  # trained again from exp3.pt


def test_an_empty_checkpoint_is_called_truncated(tmp_path):
    (tmp_path / "exp0.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="exp0.pt is truncated or corrupt"):
        load_encoder(tmp_path / "exp0.pt")
