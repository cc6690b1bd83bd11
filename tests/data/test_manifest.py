import pandas as pd
import pytest

from cl_ssl.data.manifest import (
    assign_periods,
    parse_periods,
    period_name,
    periods_by_length,
    read_manifest,
)


def write(tmp_path, text):
    path = tmp_path / "frames.csv"
    path.write_text(text)
    return path


def test_rows_are_sorted_paths_resolved_and_optional_columns_filled(tmp_path):
    path = write(tmp_path, "path,timestamp\nb.jpg,2021-02-01T00:00:00Z\na.jpg,2021-01-01\n")
    frame = read_manifest(path)
    assert frame["path"].tolist() == [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")]
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert (frame["vod_id"] == "").all() and (frame["category"] == "").all()


def test_missing_columns_name_the_expected_ones(tmp_path):
    path = write(tmp_path, "file,time\na.jpg,2021-01-01\n")
    with pytest.raises(
        ValueError, match=r"lacks columns \['path', 'timestamp'\]; expected path, timestamp"
    ):
        read_manifest(path)


def test_an_unparseable_timestamp_names_its_line(tmp_path):
    path = write(tmp_path, "path,timestamp\na.jpg,2021-01-01\nb.jpg,last tuesday\n")
    with pytest.raises(ValueError, match="line 3: timestamp 'last tuesday' is not ISO 8601"):
        read_manifest(path)


def test_missing_and_empty_manifests(tmp_path):
    with pytest.raises(FileNotFoundError, match="clssl ingest"):
        read_manifest(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="has no rows"):
        read_manifest(write(tmp_path, "path,timestamp\n"))


def test_explicit_and_length_periods():
    periods = parse_periods("2020-01-01/2020-07-01, 2021-07-01/2022-01-01")
    assert [period_name(p) for p in periods] == ["2020-01-01/2020-07-01", "2021-07-01/2022-01-01"]
    by_length = periods_by_length(
        pd.Timestamp("2020-01-15", tz="UTC"), pd.Timestamp("2021-02-01", tz="UTC"), "6M"
    )
    assert [period_name(p) for p in by_length] == [
        "2020-01-15/2020-07-15",
        "2020-07-15/2021-01-15",
        "2021-01-15/2021-07-15",
    ]
    for bad, message in [
        ("2020-01-01", "write START/END"),
        ("2021-01-01/2020-01-01", "ends before"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_periods(bad)
    with pytest.raises(ValueError, match="bad --period-length '6 months'"):
        periods_by_length(by_length[0][0], by_length[0][1], "6 months")


def test_an_empty_period_is_named(tmp_path):
    frame = read_manifest(write(tmp_path, "path,timestamp\na.jpg,2020-02-01\nb.jpg,2022-02-01\n"))
    periods = parse_periods("2020-01-01/2020-07-01,2021-01-01/2021-07-01,2022-01-01/2022-07-01")
    with pytest.raises(ValueError, match="period 2021-01-01/2021-07-01 has no frames"):
        assign_periods(frame, periods)


def test_a_zero_byte_manifest_is_named(tmp_path):
    empty = tmp_path / "frames.csv"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"manifest .*frames.csv is empty \(0 bytes\)"):
        read_manifest(empty)
