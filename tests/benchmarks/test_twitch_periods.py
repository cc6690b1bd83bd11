import pandas as pd
import pytest
import torch
from cl_ssl.benchmarks.twitch_periods import twitch_periods

from cl_ssl.data.manifest import read_manifest
from cl_ssl.streams import StreamOptions


@pytest.fixture
def manifest(digit_folder):
    """Two half-years of frames: digits 0-4 in 2020-H1, 5-9 in 2020-H2, 10 frames per VOD."""
    rows = []
    for label in range(10):
        for n in range(30):
            month = 1 + n % 6 + (6 if label >= 5 else 0)
            rows.append(
                {
                    "path": f"digits/{label}/{n}.png",
                    "timestamp": f"2020-{month:02d}-10T12:00:00Z",
                    "vod_id": f"vod-{label}-{n // 10}",
                    "category": f"game-{label}",
                }
            )
    path = digit_folder.parent / "frames.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_periods_by_length_split_by_vod_without_leakage(manifest):
    stream = twitch_periods(StreamOptions(manifest=manifest, period_length="6M", image_size=8))
    assert [e.name for e in stream.experiences] == [
        "2020-01-10T12:00/2020-07-10T12:00",
        "2020-07-10T12:00/2021-01-10T12:00",
    ]
    frames = pd.read_csv(manifest)
    assert stream.is_labeled
    for experience in stream.experiences:
        assert len(experience.train) + len(experience.test) == 150
        # Whole VODs (10 frames of one category) per side: class counts are multiples of 10.
        for split in (experience.train, experience.test):
            assert all(c % 10 == 0 for c in split.labels.bincount().tolist())
    assert len(frames) == 300


def test_split_is_deterministic_and_seeded(manifest):
    def labels(seed):
        stream = twitch_periods(StreamOptions(manifest=manifest, image_size=8, split_seed=seed))
        return [e.test.labels.tolist() for e in stream.experiences]

    assert labels(0) == labels(0)
    assert labels(0) != labels(1) or labels(0) != labels(2)


def test_explicit_periods_and_an_empty_one(manifest):
    stream = twitch_periods(
        StreamOptions(manifest=manifest, periods="2020-01-01/2020-04-01,2020-10-01/2021-01-01")
    )
    assert stream.num_experiences == 2 and stream.image_size == 32
    with pytest.raises(ValueError, match="period 2019-01-01/2019-06-01 has no frames"):
        twitch_periods(StreamOptions(manifest=manifest, periods="2019-01-01/2019-06-01"))


def test_unreadable_frames_are_skipped_counted_and_capped(manifest, digit_folder):
    for n in range(3):
        (digit_folder / "0" / f"{n}.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="skipped 3 unreadable image"):
        stream = twitch_periods(StreamOptions(manifest=manifest, image_size=8))
    first = stream.experiences[0]
    assert len(first.train) + len(first.test) == 147 and stream.skipped_images == 3
    with pytest.raises(ValueError, match=r"3 of 150 images are unreadable \(2% > 1%\)"):
        twitch_periods(StreamOptions(manifest=manifest, image_size=8, max_bad_fraction=0.01))


def test_a_period_without_one_readable_frame_is_named(manifest, digit_folder):
    for label in range(5):  # every frame of the first half-year
        for n in range(30):
            (digit_folder / str(label) / f"{n}.png").write_bytes(b"not a png")
    options = StreamOptions(manifest=manifest, image_size=8, max_bad_fraction=1.0)
    with pytest.raises(ValueError) as error:
        twitch_periods(options)
    assert str(error.value).startswith(
        "period 2020-01-10T12:00/2020-07-10T12:00: none of the 150 image files under "
        f"{digit_folder} is a readable image"
    )


def test_manifest_rows_without_files_are_not_found_with_a_count_and_three_examples(
    manifest, tmp_path
):
    """A manifest moved away from its frames: "not found", not "not a readable image"."""
    import re

    from typer.testing import CliRunner

    from cl_ssl.cli import app

    moved = tmp_path / "elsewhere" / "frames.csv"
    moved.parent.mkdir()
    moved.write_text(manifest.read_text())
    out = tmp_path / "runs"
    result = CliRunner().invoke(
        app,
        ["bench", "--stream", "twitch-periods", "--manifest", str(moved), "--image-size", "8",
         "--out", str(out), "--run", "tw", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    head = (
        "error: period 2020-01-10T12:00/2020-07-10T12:00: of the 150 image files under "
        f"{tmp_path / 'elsewhere' / 'digits'}, 150 not found "
    )
    assert line.startswith(head), line
    examples = r"\(e\.g\. \d/\d+\.png, \d/\d+\.png, \d/\d+\.png, \.\.\.\)"
    fix = ": check the paths (a manifest's are relative to its folder)"
    assert re.fullmatch(examples + re.escape(fix), line[len(head) :]), line
    assert not out.exists()


def test_missing_and_unreadable_frames_are_told_apart(manifest, digit_folder):
    for n in range(2):
        (digit_folder / "0" / f"{n}.png").unlink()
    (digit_folder / "1" / "0.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match=r"skipped 3 unreadable image\(s\) of 150: 2 not found"):
        twitch_periods(StreamOptions(manifest=manifest, image_size=8))
    with pytest.raises(ValueError) as error:
        twitch_periods(StreamOptions(manifest=manifest, image_size=8, max_bad_fraction=0.01))
    assert str(error.value) == (
        f"period 2020-01-10T12:00/2020-07-10T12:00: of the 150 image files under {digit_folder}, "
        "2 not found (e.g. 0/0.png, 0/1.png) and 1 unreadable (e.g. 1/0.png) (2% > 1%): check "
        "the paths (a manifest's are relative to its folder)"
    )


def test_missing_manifest_flag_says_how_to_build_one():
    with pytest.raises(ValueError, match="twitch-periods needs --manifest"):
        twitch_periods(StreamOptions())


def test_bench_trains_on_the_manifest(manifest, tmp_path):
    from typer.testing import CliRunner

    from cl_ssl.cli import app

    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--stream",
            "twitch-periods",
            "--manifest",
            str(manifest),
            "--strategy",
            "lwf-ssl",
            "--image-size",
            "8",
            "--batch-size",
            "32",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--run",
            "tw",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    tidy = pd.read_csv(tmp_path / "tw" / "lwf-ssl" / "seed0" / "metrics.csv")
    assert sorted(tidy.train_exp.unique()) == [-1, 0, 1]
    assert torch.isfinite(torch.tensor(tidy.value.to_numpy())).all()


def test_validation_split_keeps_each_vod_on_one_side(manifest):
    """--val-fraction carves whole VODs out of the training VODs (it cut frames before)."""
    frames = read_manifest(manifest)
    vod_of = dict(zip(frames["path"], frames["vod_id"], strict=True))
    stream = twitch_periods(StreamOptions(manifest=manifest, image_size=8, val_fraction=0.3))
    assert stream.eval_split == "val"
    for experience in stream.experiences:
        train = {vod_of[p] for p in experience.train.paths}
        val = {vod_of[p] for p in experience.test.paths}
        assert train and val and train.isdisjoint(val)
        assert len(train) + len(val) == 13  # 15 VODs of the period less the 2 test VODs
        assert experience.groups == [vod_of[p] for p in experience.train.paths]
        for split in (experience.train, experience.test):  # whole 10-frame VODs per side
            assert all(c % 10 == 0 for c in split.labels.bincount().tolist())
