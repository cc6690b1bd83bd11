from dataclasses import replace

import pandas as pd
import pytest
import torch
from cl_ssl.benchmarks.twitch_periods import twitch_periods
from cl_ssl.benchmarks.vods import vods
from typer.testing import CliRunner

from cl_ssl.cli import app
from cl_ssl.data.vods import VodFrames
from cl_ssl.drift import DriftConfig, build_drift_manifest, drift_summary
from cl_ssl.registry import streams
from cl_ssl.streams import StreamOptions

FRAMES = 4


@pytest.fixture
def drift(digit_folder, tmp_path):
    """Stream options for a tiny `clssl drift` manifest: 2 periods of 12 frames in 4 VODs."""
    config = DriftConfig(
        source=digit_folder,
        out=tmp_path / "drift" / "manifest.csv",
        periods=2,
        categories_per_period=2,
        carry_over=0.5,
        frames_per_category=6,
        frames_per_vod=3,
    )
    periods = ",".join(drift_summary(build_drift_manifest(config), config)["period"])
    return StreamOptions(manifest=config.out, periods=periods, image_size=8)


def with_vods(options: StreamOptions, **extra: str) -> StreamOptions:
    return replace(options, extra={"base": "twitch-periods", "frames": str(FRAMES), **extra})


@pytest.mark.parametrize("val_fraction", [0.0, 0.4], ids=["test", "validation"])
def test_each_training_frame_becomes_a_vod_and_the_eval_split_is_the_bases(drift, val_fraction):
    options = replace(drift, val_fraction=val_fraction)
    stream = streams.get("vods")(with_vods(options))
    base = twitch_periods(options)
    assert stream.name == "vods" and stream.num_experiences == 2 and stream.is_labeled
    assert stream.image_size == 8 and stream.eval_split == base.eval_split
    assert stream.eval_split == ("val" if val_fraction else "test")
    for exp, reference in zip(stream.experiences, base.experiences, strict=True):
        n = len(reference.train)
        assert isinstance(exp.train, VodFrames) and len(exp.train) == FRAMES * n > 0
        # VOD after VOD in the base's order, frame 0 the decoded training image itself.
        assert torch.equal(exp.train.vod_ids, torch.arange(n).repeat_interleave(FRAMES))
        assert torch.equal(exp.train.frame_index, torch.arange(FRAMES).repeat(n))
        assert torch.equal(exp.train.images[::FRAMES], reference.train.load().images)
        assert torch.equal(exp.train.labels, reference.train.labels.repeat_interleave(FRAMES))
        assert exp.groups == exp.train.vod_ids.tolist()
        # The base's test (or validation) files, untouched and not duplicated.
        assert list(exp.test.paths) == list(reference.test.paths)
        assert torch.equal(exp.test.labels, reference.test.labels)
        # The camera moves, slowly: consecutive frames are closer than consecutive VODs.
        x = exp.train.images.float().view(n, FRAMES, -1)
        consecutive = (x[:, 1:] - x[:, :-1]).abs().mean()
        assert 0 < consecutive < 0.25 * (x[1:, 0] - x[:-1, 0]).abs().mean()


def test_vods_of_digits_periods_are_digits_vods():
    """One VOD maker: ``vods`` over digits-periods gives digits-vods' frames byte for byte."""
    options = StreamOptions(max_images=30)
    made = vods(replace(options, extra={"base": "digits-periods", "frames": "3"}))
    built = streams.get("digits-vods")(replace(options, extra={"frames": "3"}))
    for exp, reference in zip(made.experiences, built.experiences, strict=True):
        assert torch.equal(exp.train.images, reference.train.images)
        assert torch.equal(exp.test.images, reference.test.images)
    assert made.augment_overrides == built.augment_overrides


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"frames": "8"}, "vods got no base: add --stream-opt base=STREAM, one of: "),
        ({"base": "vods"}, "vods got base 'vods': add --stream-opt base=STREAM, one of: "),
        ({"base": "twitch"}, "vods got base 'twitch': add --stream-opt base=STREAM, one of: "),
        ({"base": "digits-periods", "frames": "1"}, "--stream-opt frames must be an integer of"),
        ({"base": "digits-vods"}, "stream 'digits-vods' already trains on VODs: make VODs of its"),
    ],
    ids=["no-base", "itself", "unknown", "one-frame", "vods-of-vods"],
)
def test_bad_options_end_in_one_line_before_training(extra, message, tmp_path):
    args = ["bench", "--stream", "vods", "--out", str(tmp_path), "--run", "v", "--no-progress"]
    for key, value in extra.items():
        args += ["--stream-opt", f"{key}={value}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: " + message), line
    if "one of" in message:
        assert "twitch-periods" in line and ", vods" not in line
    assert not (tmp_path / "v").exists()


def test_bench_trains_online_with_minred_on_vods_of_a_manifest(drift, tmp_path):
    result = CliRunner().invoke(
        app,
        ["bench", "--stream", "vods", "--stream-opt", "base=twitch-periods", "--stream-opt",
         f"frames={FRAMES}", "--manifest", str(drift.manifest), "--periods", drift.periods,
         "--image-size", "8", "--online", "--strategy", "replay", "--opt",
         "replay.buffer=minred", "--batch-size", "64", "--device", "cpu", "--no-linear-probe",
         "--no-kmeans", "--out", str(tmp_path), "--run", "v", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tidy = pd.read_csv(tmp_path / "v" / "replay" / "seed0" / "metrics.csv")
    assert sorted(tidy.train_exp.unique()) == [-1, 0, 1]
    assert torch.isfinite(torch.tensor(tidy.value.to_numpy())).all()
    config = (tmp_path / "v" / "replay" / "seed0" / "config.json").read_text()
    assert '"online": true' in config and '"base": "twitch-periods"' in config
