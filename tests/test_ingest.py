from __future__ import annotations

import csv
import math
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cl_ssl.ingest import MANIFEST_COLUMNS, URL_HELP, IngestConfig, ingest, read_vods

CREATED = "2024-05-01T12:00:00Z"


def make_video(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """Encode HxWx3 uint8 ``frames`` at ``fps`` into ``path`` (mpeg4, yuv420p)."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 10_000_000  # near-lossless: frames stay told apart by their grey level
        for index, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def level(index: int) -> int:
    """Grey level of source frame ``index``: tells which frame a JPEG came from."""
    return 10 + 5 * index


def grey_frames(count: int, height: int = 32, width: int = 32) -> list[np.ndarray]:
    return [np.full((height, width, 3), level(i), np.uint8) for i in range(count)]


def expected_indices(
    count: int, source_fps: float, fps: float, start: float = 0.0, end: float = math.inf
) -> list[int]:
    """Reference for the sampling rule: per instant start + k / fps < end, the first source
    frame at or after it, each source frame at most once."""
    times = [i / source_fps for i in range(count)]
    picked: list[int] = []
    k = 0
    while (instant := start + k / fps) < end:
        later = [i for i, t in enumerate(times) if t >= instant - 1e-9 and t < end]
        if not later:
            break
        if not picked or later[0] != picked[-1]:
            picked.append(later[0])
        k += 1
    return picked


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    columns = list(dict.fromkeys(c for row in rows for c in row))
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def read_manifest(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def video_10fps(tmp_path_factory) -> Path:
    """4 s at 10 fps, 32x32, frame i has grey level level(i)."""
    return make_video(tmp_path_factory.mktemp("videos") / "v10.mp4", grey_frames(40), fps=10)


def check_frames(out: Path, rows: pd.DataFrame, indices: list[int], size: tuple[int, int]):
    for path, index in zip(rows["path"], indices, strict=True):
        with Image.open(out / path) as image:
            assert image.size == size and image.mode == "RGB"
            assert abs(np.asarray(image).mean() - level(index)) < 2.5, (path, index)


def test_ingest_samples_by_time_and_writes_manifest(tmp_path, video_10fps, monkeypatch):
    videos = tmp_path / "list" / "videos"
    videos.mkdir(parents=True)
    (videos / "a.mp4").write_bytes(video_10fps.read_bytes())
    vods = write_csv(
        tmp_path / "list" / "vods.csv",
        [
            {"vod_id": "a", "created_at": CREATED, "source": "videos/a.mp4", "category": "chess"},
            {"vod_id": "b", "created_at": "2024-05-02 08:30", "source": str(video_10fps)},
        ],
    )
    monkeypatch.chdir(tmp_path)  # relative sources resolve against the CSV, not the cwd
    config = IngestConfig(vods, tmp_path / "out", fps=2, size=16)

    report = ingest(config, progress=False)

    indices = expected_indices(40, source_fps=10, fps=2)
    assert indices == [0, 5, 10, 15, 20, 25, 30, 35]
    assert report.done == ["a", "b"] and report.skipped == [] and report.failed == {}
    assert report.frames == 2 * len(indices)
    manifest = read_manifest(config.out)
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    for vod_id, created, category in [("a", CREATED, "chess"), ("b", "2024-05-02 08:30", "")]:
        rows = manifest[manifest["vod_id"] == vod_id]
        assert list(rows["path"]) == [f"frames/{vod_id}/{vod_id}_{n:06d}.jpg" for n in range(8)]
        start = pd.Timestamp(created)
        assert [pd.Timestamp(t) for t in rows["timestamp"]] == [
            start + pd.Timedelta(seconds=i / 10) for i in indices
        ]
        assert set(rows["category"]) == set(rows["label"]) == {category}
        check_frames(config.out, rows, indices, (16, 16))
    # timezone kept when given, naive stays naive
    assert manifest["timestamp"].iloc[0] == "2024-05-01T12:00:00.000000+00:00"
    assert manifest["timestamp"].iloc[8] == "2024-05-02T08:30:00.000000"
    assert (config.out / "frames" / "a" / ".done").is_file()


@pytest.mark.parametrize(
    ("count", "source_fps", "fps"),
    [(40, 10, 3), (40, 10, 0.7), (8, 2, 5)],  # non-integer ratios; a source slower than fps
)
def test_sampling_rule_for_any_frame_rate(tmp_path, count, source_fps, fps):
    video = make_video(tmp_path / "v.mp4", grey_frames(count), fps=source_fps)
    vods = write_csv(
        tmp_path / "vods.csv", [{"vod_id": "v", "created_at": CREATED, "source": video}]
    )

    report = ingest(IngestConfig(vods, tmp_path / "out", fps=fps), progress=False)

    indices = expected_indices(count, source_fps, fps)
    if fps > source_fps:
        assert indices == list(range(count))  # each source frame once, never repeated
    manifest = read_manifest(tmp_path / "out")
    assert report.frames == len(manifest) == len(indices)
    created = pd.Timestamp(CREATED)
    assert [pd.Timestamp(t) for t in manifest["timestamp"]] == [
        created + pd.Timedelta(seconds=i / source_fps) for i in indices
    ]
    check_frames(tmp_path / "out", manifest, indices, (32, 32))


def test_start_end_restrict_frames_and_shift_timestamps(tmp_path, video_10fps):
    vods = write_csv(
        tmp_path / "vods.csv",
        [{"vod_id": "v", "created_at": CREATED, "source": video_10fps, "start": 1.2, "end": 2.6}],
    )

    ingest(IngestConfig(vods, tmp_path / "out", fps=2), progress=False)

    indices = expected_indices(40, source_fps=10, fps=2, start=1.2, end=2.6)
    assert indices == [12, 17, 22]
    manifest = read_manifest(tmp_path / "out")
    assert [pd.Timestamp(t) for t in manifest["timestamp"]] == [
        pd.Timestamp(CREATED) + pd.Timedelta(seconds=i / 10) for i in indices
    ]
    check_frames(tmp_path / "out", manifest, indices, (32, 32))


def test_size_centre_crops_the_shorter_side(tmp_path):
    frames = grey_frames(10, height=32, width=64)
    for frame in frames:
        frame[:, :16] = frame[:, -16:] = (255, 0, 0)  # red side bands outside the centre square
    video = make_video(tmp_path / "wide.mp4", frames, fps=10)
    vods = write_csv(
        tmp_path / "vods.csv", [{"vod_id": "w", "created_at": CREATED, "source": video}]
    )

    ingest(IngestConfig(vods, tmp_path / "square", fps=1, size=8), progress=False)
    ingest(IngestConfig(vods, tmp_path / "full", fps=1), progress=False)

    with Image.open(tmp_path / "square" / "frames" / "w" / "w_000000.jpg") as image:
        pixels = np.asarray(image).astype(int)
        assert image.size == (8, 8)
        assert np.abs(pixels[1:-1, 1:-1] - level(0)).max() < 12  # no red band left
    with Image.open(tmp_path / "full" / "frames" / "w" / "w_000000.jpg") as image:
        assert image.size == (64, 32)


def test_resume_skips_complete_vods_and_redoes_interrupted_ones(tmp_path, video_10fps):
    vods = write_csv(
        tmp_path / "vods.csv",
        [
            {"vod_id": "a", "created_at": CREATED, "source": video_10fps},
            {"vod_id": "b", "created_at": CREATED, "source": video_10fps},
        ],
    )
    config = IngestConfig(vods, tmp_path / "out", fps=1)
    first = ingest(config, progress=False)
    manifest_text = config.manifest.read_text()

    again = ingest(config, progress=False)
    assert again.done == [] and again.skipped == ["a", "b"] and again.frames == 0
    assert config.manifest.read_text() == manifest_text

    # b stopped after its rows were appended, before its marker, mid-way through a row
    (config.out / "frames" / "b" / ".done").unlink()
    (config.out / "frames" / "b" / "stale.jpg").write_bytes(b"partial")
    with open(config.manifest, "a") as file:
        file.write("frames/b/b_000099.jpg,2024-05-01T12:0")

    redo = ingest(config, progress=False)

    assert redo.skipped == ["a"] and redo.done == ["b"] and redo.frames == first.frames // 2
    assert config.manifest.read_text() == manifest_text  # same rows, none twice, no partial line
    assert not (config.out / "frames" / "b" / "stale.jpg").exists()
    manifest = read_manifest(config.out)
    assert not manifest["path"].duplicated().any()
    assert all((config.out / p).is_file() for p in manifest["path"])


def test_bad_vods_fail_alone(tmp_path, video_10fps):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    still = tmp_path / "still.mp4"  # FFmpeg would read it as a one-frame video
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(still, format="JPEG")
    vods = write_csv(
        tmp_path / "vods.csv",
        [
            {"vod_id": "corrupt", "created_at": CREATED, "source": corrupt, "start": ""},
            {"vod_id": "missing", "created_at": CREATED, "source": "nowhere.mp4", "start": ""},
            {"vod_id": "text", "created_at": CREATED, "source": text, "start": ""},
            {"vod_id": "still", "created_at": CREATED, "source": still, "start": ""},
            {"vod_id": "late", "created_at": CREATED, "source": video_10fps, "start": 60},
            {"vod_id": "good", "created_at": CREATED, "source": video_10fps, "start": ""},
        ],
    )
    config = IngestConfig(vods, tmp_path / "out", fps=1)

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        report = ingest(config, progress=False)

    assert report.done == ["good"]
    assert warned == []  # reported once, by the caller (clssl ingest's summary)
    assert set(report.failed) == {"corrupt", "missing", "text", "still", "late"}
    assert report.failed["text"].startswith(f"cannot open {text}: ")
    assert report.failed["still"].startswith(f"{still} is a still image (")
    assert report.failed["corrupt"].startswith(f"cannot open {corrupt}: ")
    assert report.failed["missing"] == f"video file {tmp_path / 'nowhere.mp4'} not found"
    assert report.failed["late"].startswith("no frames after 60 s")
    assert all("\n" not in reason for reason in report.failed.values())
    assert set(read_manifest(config.out)["vod_id"]) == {"good"}
    assert sorted(p.name for p in (config.out / "frames").iterdir()) == ["good"]


def test_url_source_without_downloader(tmp_path, monkeypatch):
    for module in ("yt_dlp", "streamlink"):
        monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    vods = write_csv(
        tmp_path / "vods.csv",
        [{"vod_id": "u", "created_at": CREATED, "source": "https://example.com/videos/1"}],
    )

    report = ingest(IngestConfig(vods, tmp_path / "out"), progress=False)

    assert report.failed == {"u": URL_HELP}
    assert not (tmp_path / "out").exists()  # nothing written: no empty folders left
    assert URL_HELP == "URL source needs yt-dlp or streamlink: pip install 'cl-ssl[urls]'"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"vod_id": "a", "created_at": CREATED}],
            "vods.csv lacks columns ['source']; expected vod_id, created_at, source "
            "(+ optional category, start, end)",
        ),
        (
            [
                {"vod_id": "a", "created_at": CREATED, "source": "a.mp4"},
                {"vod_id": "b", "created_at": "yesterday", "source": "b.mp4"},
            ],
            "vods.csv row 2 (vod_id 'b'): created_at 'yesterday' is not an ISO 8601 timestamp",
        ),
        (
            [
                {"vod_id": "a", "created_at": CREATED, "source": "a.mp4"},
                {"vod_id": "a", "created_at": CREATED, "source": "b.mp4"},
            ],
            "vods.csv row 2: duplicate vod_id 'a'",
        ),
        (
            [{"vod_id": "../a", "created_at": CREATED, "source": "a.mp4"}],
            "vods.csv row 1: vod_id '../a' must be",
        ),
        (
            [{"vod_id": "a", "created_at": CREATED, "source": "a.mp4", "start": 5, "end": 2}],
            "vods.csv row 1 (vod_id 'a'): end 2.0 must be after start 5.0",
        ),
    ],
)
def test_bad_csv_is_explained(tmp_path, rows, message):
    vods = write_csv(tmp_path / "vods.csv", rows)
    with pytest.raises(ValueError) as error:
        ingest(IngestConfig(vods, tmp_path / "out"), progress=False)
    assert str(error.value).startswith(message)
    assert not (tmp_path / "out").exists()


def test_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_vods(tmp_path / "nope.csv")


def test_read_vods_keeps_ids_as_text_and_fills_optionals(tmp_path):
    vods = write_csv(
        tmp_path / "vods.csv", [{"vod_id": "0042", "created_at": CREATED, "source": "x.mp4"}]
    )
    table = read_vods(vods)
    row = table.iloc[0]
    assert row["vod_id"] == "0042" and row["category"] == ""
    assert row["source"] == str(tmp_path / "x.mp4")
    assert row["created_at"] == pd.Timestamp(CREATED) and math.isnan(row["start"])
    with open(vods) as file:
        assert next(csv.reader(file)) == ["vod_id", "created_at", "source"]


def test_cli_exits_non_zero_when_no_vod_was_ingested(tmp_path):
    from typer.testing import CliRunner

    from cl_ssl.cli import app

    vods = write_csv(
        tmp_path / "vods.csv",
        [{"vod_id": "missing", "created_at": CREATED, "source": "nowhere.mp4", "start": ""}],
    )
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        result = CliRunner().invoke(app, ["ingest", str(vods), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert warned == [] and result.output.count("nowhere.mp4") == 1  # printed once
    assert f"  failed missing: video file {tmp_path / 'nowhere.mp4'} not found" in result.output
    assert "error: no VOD was ingested, so no manifest was written" in result.output
    assert "manifest: " not in result.output
    assert not (tmp_path / "out").exists()  # no empty out/frames/ left behind


def test_a_failed_call_into_an_existing_folder_leaves_it_as_it_was(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    vods = write_csv(
        tmp_path / "vods.csv",
        [{"vod_id": "missing", "created_at": CREATED, "source": "nowhere.mp4", "start": ""}],
    )
    report = ingest(IngestConfig(vods, out), progress=False)
    assert set(report.failed) == {"missing"} and list(out.iterdir()) == []
