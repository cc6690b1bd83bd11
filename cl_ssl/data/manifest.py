"""Frame manifests: one CSV row per frame, grouped into time periods.

Columns: ``path`` (image file, relative to the manifest's folder) and ``timestamp``
(ISO 8601) are required; ``vod_id``, ``stream_id``, ``category`` and ``label`` are
optional. ``clssl ingest`` and ``clssl drift`` write such manifests.

Example:
    >>> frames = read_manifest(Path("frames/manifest.csv"))
    >>> periods = periods_by_length(frames.timestamp.min(), frames.timestamp.max(), "6M")
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

REQUIRED_COLUMNS = ("path", "timestamp")
OPTIONAL_COLUMNS = ("vod_id", "stream_id", "category", "label")
EXPECTED = "path, timestamp (+ optional vod_id, stream_id, category, label)"

Period = tuple[pd.Timestamp, pd.Timestamp]


def read_manifest(path: Path) -> pd.DataFrame:
    """The manifest's rows with ``timestamp`` parsed (UTC) and ``path`` made absolute.

    Raises one-line errors naming the problem: a missing file, missing columns (with the
    expected ones), an empty manifest, a timestamp that does not parse (with its row).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"manifest {path} not found: build one with `clssl ingest` or `clssl drift`"
        )
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        message = f"manifest {path} is empty (0 bytes): expected a CSV header and rows"
        raise ValueError(message) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; expected {EXPECTED}")
    if frame.empty:
        raise ValueError(f"{path} has no rows: add one row per frame")
    stamps = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    bad = stamps.isna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise ValueError(
            f"{path} line {row + 2}: timestamp '{frame['timestamp'].iloc[row]}' is not ISO 8601 "
            "(e.g. 2021-03-01T12:00:00Z)"
        )
    frame["timestamp"] = stamps
    frame["path"] = [str(path.parent / p) for p in frame["path"]]
    for column in OPTIONAL_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def parse_periods(text: str) -> list[Period]:
    """``"2020-01-01/2020-07-01,2021-07-01/2022-01-01"`` -> [start, end) pairs (UTC)."""
    periods = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        start, sep, end = part.partition("/")
        try:
            bounds = (pd.Timestamp(start), pd.Timestamp(end)) if sep else None
        except ValueError:
            bounds = None
        if bounds is None:
            raise ValueError(f"bad period '{part}': write START/END, e.g. 2020-01-01/2020-07-01")
        bounds = tuple(b.tz_localize("UTC") if b.tzinfo is None else b for b in bounds)
        if not bounds[0] < bounds[1]:
            raise ValueError(f"period '{part}' ends before it starts")
        periods.append(bounds)
    if not periods:
        raise ValueError("--periods is empty: write START/END[,START/END...]")
    return periods


_UNITS = {"Y": "years", "M": "months", "W": "weeks", "D": "days", "H": "hours"}


def period_offset(length: str) -> pd.DateOffset:
    """``"6M"`` -> 6 months; units Y, M, W, D, H."""
    match = re.fullmatch(r"\s*(\d+)\s*([YMWDH])\s*", length.upper())
    if not match or int(match[1]) == 0:
        raise ValueError(f"bad --period-length '{length}': write N followed by Y, M, W, D or H")
    return pd.DateOffset(**{_UNITS[match[2]]: int(match[1])})


def periods_by_length(first: pd.Timestamp, last: pd.Timestamp, length: str) -> list[Period]:
    """Consecutive periods of ``length`` from ``first`` until ``last`` is covered."""
    offset = period_offset(length)
    periods, start = [], first
    while start <= last:
        periods.append((start, start + offset))
        start = start + offset
    return periods


def period_name(period: Period) -> str:
    """``2020-01-01/2020-07-01`` (dates, or date-times when the bounds need them)."""
    start, end = period
    fmt = "%Y-%m-%d" if all(t == t.normalize() for t in period) else "%Y-%m-%dT%H:%M"
    return f"{start:{fmt}}/{end:{fmt}}"


def assign_periods(frame: pd.DataFrame, periods: list[Period]) -> list[pd.DataFrame]:
    """The rows of each period (``start <= timestamp < end``); an empty period is an error."""
    parts = []
    for period in periods:
        rows = frame[(frame["timestamp"] >= period[0]) & (frame["timestamp"] < period[1])]
        if rows.empty:
            raise ValueError(
                f"period {period_name(period)} has no frames (manifest spans "
                f"{frame['timestamp'].min():%Y-%m-%d} to {frame['timestamp'].max():%Y-%m-%d}): "
                "change --periods or --period-length"
            )
        parts.append(rows)
    return parts
