"""`clssl continue`: a deployed embedding trains on the next period with the state it carries."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pandas as pd
import pytest
from typer.testing import CliRunner

from cl_ssl.bench import run_bench
from cl_ssl.cli import app
from cl_ssl.periodic import ContinueConfig, continue_training

NAMES = ("naive", "lwf-ssl", "ewc", "replay")


@pytest.fixture(scope="module")
def full_bench(tmp_path_factory):
    """The uninterrupted bench of every strategy the acceptance names (5 experiences)."""
    from cl_ssl.config import BenchConfig, TrainConfig
    from cl_ssl.streams import StreamOptions

    config = BenchConfig(
        stream="digits-periods",
        strategies=",".join(NAMES),
        train=TrainConfig(epochs=2, batch_size=32, eval_batch_size=64, device="cpu"),
        stream_options=StreamOptions(image_size=8, max_images=60),
        out=tmp_path_factory.mktemp("periodic"),
        run_name="full",
        progress=False,
    )
    result = run_bench(config)
    assert result.ok, result.failures
    return result.directory


@pytest.mark.parametrize("name", NAMES)
def test_continue_on_the_next_experience_equals_the_uninterrupted_bench(name, full_bench, tmp_path):
    checkpoint = tmp_path / "deployed.pt"
    shutil.copy(full_bench / name / "seed0" / "checkpoints" / "exp1.pt", checkpoint)

    result = continue_training(
        ContinueConfig(checkpoint, experiences=(2,), out=tmp_path / "next", progress=False)
    )

    expected = pd.read_csv(full_bench / name / "seed0" / "metrics.csv")
    expected = expected[expected["train_exp"] <= 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "next" / "metrics.csv"), expected)
    assert result.metrics["train_exp"].max() == 2
    assert (tmp_path / "next" / "checkpoints" / "exp2.pt").is_file()


def test_the_cli_continues_beside_the_previous_checkpoints_and_never_overwrites(
    full_bench, tmp_path
):
    deployed = tmp_path / "lwf-ssl"
    shutil.copytree(full_bench / "lwf-ssl" / "seed0", deployed)
    for k in (2, 3, 4):
        (deployed / "checkpoints" / f"exp{k}.pt").unlink()
    (deployed / "results.json").unlink()
    runner = CliRunner()

    result = runner.invoke(
        app, ["continue", "--from", str(deployed / "checkpoints" / "exp1.pt"), "--no-progress"]
    )

    assert result.exit_code == 0, result.output
    assert "experiences trained so far [0, 1, 2, 3, 4]" in result.output
    pd.testing.assert_frame_equal(
        pd.read_csv(deployed / "metrics.csv"),
        pd.read_csv(full_bench / "lwf-ssl" / "seed0" / "metrics.csv"),
    )
    assert (deployed / "config.upto-exp1.json").is_file()  # what trained 0..1 is kept
    again = runner.invoke(app, ["continue", "--from", str(deployed / "checkpoints" / "exp1.pt")])
    assert again.exit_code == 2
    assert "already has checkpoints/exp2.pt: pass --out NEW_DIR" in again.output
    done = runner.invoke(app, ["continue", "--from", str(deployed / "checkpoints" / "exp4.pt")])
    assert done.exit_code == 2
    assert "the checkpoint was trained through experience 4: give the stream" in done.output


def test_continue_names_what_it_cannot_use(full_bench, tmp_path):
    checkpoint = full_bench / "naive" / "seed0" / "checkpoints" / "exp1.pt"
    runner = CliRunner()
    result = runner.invoke(app, ["continue", "--from", str(checkpoint), "--image-size", "16"])
    assert result.exit_code == 2
    assert "the checkpoint was trained at 8 px: pass --image-size 8" in result.output
    result = runner.invoke(app, ["continue", "--from", str(checkpoint), "--split-seed", "3"])
    assert result.exit_code == 2 and "--split-seed must stay the checkpoint's" in result.output
    weights_only = tmp_path / "old.pt"
    import torch

    payload = torch.load(checkpoint, weights_only=True)
    torch.save({**payload, "training_state": None}, weights_only)
    result = runner.invoke(app, ["continue", "--from", str(weights_only)])
    assert result.exit_code == 2 and "holds the encoder's weights only" in result.output


def test_a_new_period_of_a_manifest_trains_as_the_next_experience(tmp_path, digit_folder):
    """twitch-periods: bench on two periods, then the third arrives and is continued on."""
    from cl_ssl.config import BenchConfig, TrainConfig
    from cl_ssl.drift import DriftConfig, build_drift_manifest
    from cl_ssl.streams import StreamOptions

    manifest = tmp_path / "manifest.csv"
    build_drift_manifest(
        DriftConfig(
            source=digit_folder, out=manifest, periods=3, frames_per_category=8,
            frames_per_vod=4, categories_per_period=4, carry_over=0.5,
        )
    )  # fmt: skip
    periods = ["2020-01-01/2020-07-01", "2020-07-01/2021-01-01", "2021-01-01/2021-07-01"]
    config = BenchConfig(
        stream="twitch-periods",
        strategies="lwf-ssl+replay",
        train=TrainConfig(epochs=1, batch_size=16, eval_batch_size=64, device="cpu"),
        stream_options=StreamOptions(
            manifest=manifest, periods=",".join(periods[:2]), image_size=8
        ),
        out=tmp_path / "runs",
        run_name="deployed",
        progress=False,
    )
    directory = run_bench(config).directory / "lwf-ssl+replay" / "seed0"
    result = CliRunner().invoke(
        app,
        ["continue", "--from", str(directory / "checkpoints" / "exp1.pt"),
         "--periods", ",".join(periods), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(directory / "metrics.csv")
    after = rows[(rows["train_exp"] == 2) & (rows["metric"] == "exp_knn20")]
    assert sorted(after["eval_exp"]) == [0, 1, 2]  # every period so far is evaluated
    assert (directory / "checkpoints" / "exp2.pt").is_file()
    # One evaluation setup: the rows of periods 0-1 were measured again with the grown
    # stream's banks and probes, so the history equals a bench that had all three periods
    # from the start; the rows measured on two periods are kept apart.
    grown = replace(config.stream_options, periods=",".join(periods))
    three = replace(config, stream_options=grown, run_name="three")
    expected = pd.read_csv(run_bench(three).directory / "lwf-ssl+replay" / "seed0" / "metrics.csv")
    pd.testing.assert_frame_equal(rows, expected)
    earlier = pd.read_csv(directory / "metrics.upto-exp1.csv")
    assert earlier["train_exp"].max() == 1 and earlier["eval_exp"].max() == 1
    assert not earlier.equals(rows[rows["train_exp"] <= 1].reset_index(drop=True))
