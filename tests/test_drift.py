import random

import pandas as pd
import pytest
from cl_ssl.benchmarks.twitch_periods import twitch_periods
from typer.testing import CliRunner

from cl_ssl.cli import app
from cl_ssl.drift import DriftConfig, build_drift_manifest, drift_summary, period_categories
from cl_ssl.streams import StreamOptions


@pytest.mark.parametrize(("carry_over", "kept"), [(1.0, 4), (0.5, 2), (0.0, 0)])
def test_carry_over_sets_the_shared_categories(carry_over, kept):
    schedule = period_categories(list("abcdefghij"), 5, 4, carry_over, random.Random(0))
    assert all(len(period) == 4 for period in schedule)
    for previous, current in zip(schedule, schedule[1:], strict=False):
        assert len(set(previous) & set(current)) == kept


def test_manifest_feeds_twitch_periods_with_every_image_used_once(digit_folder, tmp_path):
    config = DriftConfig(
        source=digit_folder,
        out=tmp_path / "drift" / "manifest.csv",
        periods=3,
        categories_per_period=4,
        carry_over=0.5,
        frames_per_category=10,
        frames_per_vod=5,
    )
    manifest = build_drift_manifest(config)
    assert len(manifest) == 3 * 4 * 10 and manifest["path"].is_unique
    assert (config.out.parent / manifest["path"].iloc[0]).is_file()  # relative to the manifest
    periods = ",".join(drift_summary(manifest, config)["period"])
    assert periods == "2020-01-01/2020-07-01,2020-07-01/2021-01-01,2021-01-01/2021-07-01"
    stream = twitch_periods(StreamOptions(manifest=config.out, periods=periods, image_size=8))
    assert stream.num_experiences == 3
    categories = [
        set(e.train.labels.tolist()) | set(e.test.labels.tolist()) for e in stream.experiences
    ]
    assert [len(c) for c in categories] == [4, 4, 4]
    assert len(categories[0] & categories[1]) == 2 and len(categories[1] & categories[2]) == 2
    # Same seed, same manifest.
    again = build_drift_manifest(config)
    pd.testing.assert_frame_equal(manifest.reset_index(drop=True), again.reset_index(drop=True))


def test_cli_prints_the_schedule(digit_folder, tmp_path):
    result = CliRunner().invoke(
        app,
        ["drift", str(digit_folder), "--out", str(tmp_path / "m.csv"), "--periods", "2",
         "--categories-per-period", "5", "--carry-over", "0", "--frames-per-category", "5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| period" in result.output and "0%" in result.output
    assert pd.read_csv(tmp_path / "m.csv").shape[0] == 50


def test_impossible_drift_names_the_fix():
    with pytest.raises(ValueError, match="lower --categories-per-period or raise --carry-over"):
        period_categories(list("abcde"), 3, 4, 0.0, random.Random(0))
