"""VODs (local videos or URLs) to JPEG frames plus a frame manifest, resumable.

The input CSV has one row per VOD: ``vod_id``, ``created_at`` (ISO 8601 start of the
VOD), ``source`` (a video path, relative to the CSV's folder, or an http(s) URL) and
optionally ``category``, ``start`` and ``end`` (seconds into the video). Frames are
sampled at ``fps`` by presentation time and written to ``out/frames/<vod_id>/``; the
manifest ``out/manifest.csv`` has one row per frame: ``path`` (relative to the manifest's
folder), ``timestamp`` (``created_at`` + frame time), ``vod_id``, ``category``, ``label``.

A VOD is complete once ``out/frames/<vod_id>/.done`` exists and the manifest holds its
rows; calling :func:`ingest` again skips complete VODs and redoes interrupted ones.

Example:
    >>> report = ingest(IngestConfig(Path("vods.csv"), Path("data/vods"), fps=0.5, size=224))
    >>> report.done, report.failed                  # (['v1', 'v2'], {'v3': 'video file ...'})
"""

from __future__ import annotations

import csv
import importlib
import io
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from cl_ssl.atomic import atomic_write, write_text
from cl_ssl.config import IngestConfig

REQUIRED_COLUMNS = ("vod_id", "created_at", "source")
OPTIONAL_COLUMNS = ("category", "start", "end")
MANIFEST_COLUMNS = ("path", "timestamp", "vod_id", "category", "label")
DONE_MARKER = ".done"
URL_HELP = "URL source needs yt-dlp or streamlink: pip install 'cl-ssl[urls]'"

# vod_id becomes a folder name: no separators, no "." / ".." and nothing that breaks a CSV line.
_VOD_ID = re.compile(r"^(?!\.{1,2}$)[\w.-]+$")
# Float noise in ``pts * time_base``: a frame this close before an instant counts as on it.
_EPS = 1e-6


@dataclass
class IngestReport:
    """What one :func:`ingest` call did."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0


class VodError(Exception):
    """A VOD that cannot be ingested; the message is the one-line reason."""


def read_vods(path: Path) -> pd.DataFrame:
    """Read and validate the VOD list.

    Returns one row per VOD with ``vod_id``, ``created_at`` (``pd.Timestamp``, timezone
    kept), ``source`` (an absolute path or a URL), ``category`` ("" if absent), ``start``
    and ``end`` (float seconds, NaN if absent).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Missing columns, an empty or unsafe or duplicate ``vod_id``, an empty
            ``source``, a ``created_at`` that is not ISO 8601, or bad ``start``/``end``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VOD list {path} not found")
    # dtype=str: ids such as "0042" must not turn into integers.
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        message = f"VOD list {path} is empty (0 bytes): expected a CSV header and rows"
        raise ValueError(message) from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path.name} lacks columns {missing}; expected {', '.join(REQUIRED_COLUMNS)} "
            f"(+ optional {', '.join(OPTIONAL_COLUMNS)})"
        )
    rows = []
    seen: set[str] = set()
    for number, record in enumerate(table.to_dict("records"), start=1):
        where = f"{path.name} row {number}"
        vod_id = record["vod_id"].strip()
        if not _VOD_ID.match(vod_id):
            raise ValueError(
                f"{where}: vod_id {vod_id!r} must be non-empty letters, digits, '_', '-' or '.'"
            )
        if vod_id in seen:
            raise ValueError(f"{where}: duplicate vod_id {vod_id!r}")
        seen.add(vod_id)
        where = f"{where} (vod_id {vod_id!r})"
        source = record["source"].strip()
        if not source:
            raise ValueError(f"{where}: empty source")
        if not _is_url(source):
            source = str((path.parent / source).resolve())
        category = record.get("category", "").strip()
        if "\n" in category or "\r" in category:
            raise ValueError(f"{where}: category contains a line break")
        start = _seconds(record.get("start", ""), "start", where)
        end = _seconds(record.get("end", ""), "end", where)
        if not math.isnan(start) and not math.isnan(end) and end <= start:
            raise ValueError(f"{where}: end {end} must be after start {start}")
        rows.append(
            {
                "vod_id": vod_id,
                "created_at": _timestamp(record["created_at"], where),
                "source": source,
                "category": category,
                "start": start,
                "end": end,
            }
        )
    columns = ["vod_id", "created_at", "source", "category", "start", "end"]
    # object dtype for created_at: VODs may carry different timezones.
    frame = pd.DataFrame(rows, columns=columns)
    frame["created_at"] = frame["created_at"].astype(object)
    return frame


def ingest(config: IngestConfig, progress: bool = True) -> IngestReport:
    """Write the frames and manifest rows of every VOD in ``config.vods_csv``.

    Complete VODs are skipped, interrupted ones are redone from scratch, and a VOD that
    fails (missing file, undecodable video, no frames, download error) is reported in
    :attr:`IngestReport.failed`, with its one-line reason, while the others go on (the
    caller prints it: ``clssl ingest`` once, in its summary). A call that writes no frame
    leaves no empty ``frames/`` (nor an ``out`` folder it created) behind.
    """
    vods = read_vods(config.vods_csv)
    created = not config.out.exists()
    config.frames_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _ingest_all(vods, config, progress)
    finally:
        for folder in (config.frames_dir, config.out if created else None):
            if folder is not None and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _ingest_all(vods: pd.DataFrame, config: IngestConfig, progress: bool) -> IngestReport:
    in_manifest = _reconcile_manifest(config)
    report = IngestReport()
    bar = tqdm(vods.to_dict("records"), desc="ingest", unit="vod", disable=not progress)
    for vod in bar:
        vod_id = vod["vod_id"]
        bar.set_postfix(vod=vod_id, frames=report.frames, refresh=False)
        folder = config.frames_dir / vod_id
        if (folder / DONE_MARKER).is_file() and vod_id in in_manifest:
            report.skipped.append(vod_id)
            continue
        # A folder without a marker (or without manifest rows) is from an interrupted call.
        shutil.rmtree(folder, ignore_errors=True)
        try:
            rows = _ingest_vod(vod, folder, config)
        except VodError as error:
            reason = str(error)
        except Exception as error:  # one bad VOD must not stop the others
            reason = f"{type(error).__name__}: {error}"
        else:
            _append_rows(config.manifest, rows)
            write_text(folder / DONE_MARKER, f"{len(rows)}\n")
            report.done.append(vod_id)
            report.frames += len(rows)
            continue
        shutil.rmtree(folder, ignore_errors=True)
        report.failed[vod_id] = " ".join(reason.split()) or "unknown error"
    bar.close()
    return report


def _ingest_vod(vod: dict, folder: Path, config: IngestConfig) -> list[tuple[str, ...]]:
    """Write one VOD's frames into ``folder``; return its manifest rows."""
    source = vod["source"]
    if not _is_url(source):
        if not Path(source).is_file():
            raise VodError(f"video file {source} not found")
        return _write_frames(Path(source), vod, folder, config)
    downloader = _downloader()
    if downloader is None:
        raise VodError(URL_HELP)
    # Next to the output rather than in /tmp: VODs can be larger than a tmpfs.
    with tempfile.TemporaryDirectory(prefix=f".download-{vod['vod_id']}-", dir=config.out) as tmp:
        try:
            video = _download(downloader, source, Path(tmp))
        except Exception as error:  # downloaders raise many error types
            raise VodError(f"download of {source} with {downloader} failed: {error}") from None
        return _write_frames(video, vod, folder, config)


def _is_still_image(demuxer: str) -> bool:
    """FFmpeg opens a JPEG or PNG as a one-frame 'video' (image2, jpeg_pipe, png_pipe, ...)."""
    return demuxer == "image2" or demuxer.endswith("_pipe")


def _write_frames(
    video: Path, vod: dict, folder: Path, config: IngestConfig
) -> list[tuple[str, ...]]:
    vod_id, category = vod["vod_id"], vod["category"]
    start = 0.0 if math.isnan(vod["start"]) else vod["start"]
    end = math.inf if math.isnan(vod["end"]) else vod["end"]
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        container = av.open(str(video))
    except av.error.FFmpegError as error:
        raise VodError(f"cannot open {video}: {_ffmpeg_reason(error)}") from None
    with container:
        if not container.streams.video:
            raise VodError(f"{video} has no video stream")
        if _is_still_image(container.format.name):
            raise VodError(
                f"{video} is a still image ({container.format.long_name}), not a video: "
                "give the VOD's video file"
            )
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for index, (time, frame) in enumerate(
                _sample(container, stream, config.fps, start, end)
            ):
                image = _square(frame.to_image(), config.size)
                name = f"{vod_id}_{index:06d}.jpg"
                image.save(folder / name, quality=config.jpeg_quality)
                # Microseconds: float seconds would otherwise leak nanosecond noise.
                stamp = vod["created_at"] + pd.Timedelta(microseconds=round(time * 1e6))
                rows.append(
                    (
                        f"frames/{vod_id}/{name}",
                        stamp.isoformat(timespec="microseconds"),
                        vod_id,
                        category,
                        category,
                    )
                )
        except av.error.FFmpegError as error:
            raise VodError(f"cannot decode {video}: {_ffmpeg_reason(error)}") from None
    if not rows:
        span = f"between {start:g} s and {end:g} s" if end < math.inf else f"after {start:g} s"
        raise VodError(f"no frames {span} in {video}")
    return rows


def _ffmpeg_reason(error: av.error.FFmpegError) -> str:
    # str(error) repeats the errno and the file name, which the reason already holds.
    return error.strerror or str(error)


def _sample(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    fps: float,
    start: float,
    end: float,
) -> Iterator[tuple[float, av.VideoFrame]]:
    """Yield ``(time, frame)`` for the frames kept at ``fps`` in ``[start, end)``.

    The instants are ``t_k = start + k / fps``; a frame is kept when its time has reached
    the next instant not yet served, so a source slower than ``fps`` yields each frame
    once and a faster one is thinned out, whatever its frame rate.
    """
    # Times relative to the stream's first timestamp: MPEG-TS captures start at any pts.
    origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if start > 0:
        try:  # lands on the keyframe at or before start; frames before start are dropped below
            container.seek(int((start + origin) / stream.time_base), stream=stream, backward=True)
        except av.error.FFmpegError:
            pass  # not seekable: decoding from the beginning gives the same frames, slower
    k = 0
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        time = frame.time - origin
        if time >= end - _EPS:
            break
        if time >= start + k / fps - _EPS:
            yield time, frame
            k = math.floor((time - start) * fps + _EPS) + 1


def _square(image: Image.Image, size: int | None) -> Image.Image:
    image = image.convert("RGB")
    if size is None:
        return image
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != size:
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return image


def _reconcile_manifest(config: IngestConfig) -> set[str]:
    """Drop rows of VODs without a ``.done`` marker; return the VOD ids left in the manifest.

    Rows can outlive their VOD only when a call stopped between appending them and writing
    the marker, or in the middle of appending (a last line without newline).
    """
    manifest = config.manifest
    if not manifest.is_file():
        return set()
    text = manifest.read_text(encoding="utf-8")
    if not text:  # nothing to keep; _append_rows then starts it afresh with a header
        manifest.unlink()
        return set()
    records = list(csv.reader(io.StringIO(text[: text.rfind("\n") + 1])))
    if not records or tuple(records[0]) != MANIFEST_COLUMNS:
        raise ValueError(
            f"{manifest} is not a frame manifest (header should be {','.join(MANIFEST_COLUMNS)})"
        )
    done = {p.parent.name for p in config.frames_dir.glob(f"*/{DONE_MARKER}")}
    kept = [r for r in records[1:] if len(r) == len(MANIFEST_COLUMNS) and r[2] in done]
    if len(kept) != len(records) - 1 or not text.endswith("\n"):
        _write_atomic(manifest, [MANIFEST_COLUMNS, *kept])
    return {r[2] for r in kept}


def _append_rows(manifest: Path, rows: list[tuple[str, ...]]) -> None:
    if not manifest.is_file():
        _write_atomic(manifest, [MANIFEST_COLUMNS])
    # One write of whole lines: an interruption leaves at worst a partial last line, which
    # _reconcile_manifest drops along with the other rows of the unmarked VOD.
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    with open(manifest, "a", encoding="utf-8", newline="") as file:
        file.write(buffer.getvalue())
        file.flush()
        os.fsync(file.fileno())


def _write_atomic(path: Path, rows: list[tuple[str, ...]] | list[list[str]]) -> None:
    with atomic_write(path) as file:
        csv.writer(file, lineterminator="\n").writerows(rows)


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def _downloader() -> str | None:
    """The first importable of yt-dlp and streamlink, or None."""
    for module in ("yt_dlp", "streamlink"):
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        return module
    return None


def _download(downloader: str, url: str, folder: Path) -> Path:
    """Download ``url`` into ``folder`` with ``downloader``; return the video file."""
    if downloader == "yt_dlp":
        import yt_dlp

        options = {
            "outtmpl": str(folder / "video.%(ext)s"),
            # Frames only: a video-only stream saves the audio download.
            "format": "bv/b",
            "quiet": True,
            "noprogress": True,
            "noplaylist": True,
        }
        with yt_dlp.YoutubeDL(options) as ydl:
            ydl.download([url])
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.endswith(".part")]
        if not files:
            raise RuntimeError("yt-dlp wrote no file")
        return max(files, key=lambda p: p.stat().st_size)
    import streamlink

    streams = streamlink.Streamlink().streams(url)
    if "best" not in streams:
        raise RuntimeError("streamlink found no playable stream")
    target = folder / "video.ts"
    with streams["best"].open() as reader, open(target, "wb") as file:
        while chunk := reader.read(1 << 20):
            file.write(chunk)
    return target


def _timestamp(value: str, where: str) -> pd.Timestamp:
    value = value.strip()
    # pandas reads "now"/"today" even in ISO 8601 mode; a VOD start must be a fixed time.
    if value.lower() not in ("", "now", "today"):
        try:
            stamp = pd.to_datetime(value, format="ISO8601")
        except (ValueError, OverflowError):
            stamp = pd.NaT
        if not pd.isna(stamp):
            return stamp
    raise ValueError(f"{where}: created_at {value!r} is not an ISO 8601 timestamp")


def _seconds(value: str, column: str, where: str) -> float:
    value = value.strip()
    if not value:
        return math.nan
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"{where}: {column} {value!r} is not a number of seconds >= 0")
    return seconds
