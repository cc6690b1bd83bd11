"""Simulated content drift: a time-stamped frame manifest from any labeled ImageFolder.

Each period shows ``categories_per_period`` categories (class folders, like the games of a
streaming period). From one period to the next a share ``carry_over`` of them stays and the
rest is replaced by categories the previous period did not show (never-shown ones first):
``carry_over=0.9`` resembles the seed's Twitch periods, ``0`` gives disjoint periods. Every
image is used at most once; frames get seeded random timestamps inside their period and
``vod_id`` s of ``frames_per_vod`` frames, so ``twitch-periods`` reads the manifest as it
reads a real one and splits it by VOD.

Example:
    >>> build_drift_manifest(DriftConfig(source=Path("../shared/data/cifar10/train"),
    ...                                  out=Path("drift/manifest.csv"), carry_over=0.5))
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pandas as pd

from cl_ssl.atomic import write_csv
from cl_ssl.config import DriftConfig
from cl_ssl.data.image_folder import IMAGE_SUFFIXES
from cl_ssl.data.manifest import period_offset


def period_categories(
    categories: list[str], periods: int, per_period: int, carry_over: float, rng: random.Random
) -> list[list[str]]:
    """The categories of each period under the carry-over rule."""
    if not 1 <= per_period <= len(categories):
        raise ValueError(
            f"--categories-per-period must be between 1 and {len(categories)}, got {per_period}"
        )
    keep = round(carry_over * per_period)
    new = per_period - keep
    if periods > 1 and new > len(categories) - per_period:
        raise ValueError(
            f"{new} new categories per period need at least {per_period + new} categories, "
            f"the folder has {len(categories)}: lower --categories-per-period or raise "
            "--carry-over"
        )
    shown = rng.sample(categories, per_period)
    schedule, used = [sorted(shown)], set(shown)
    for _ in range(1, periods):
        kept = rng.sample(shown, keep)
        fresh = [c for c in categories if c not in used]
        stale = [c for c in categories if c in used and c not in shown]
        rng.shuffle(fresh)
        rng.shuffle(stale)
        shown = kept + (fresh + stale)[:new]
        used.update(shown)
        schedule.append(sorted(shown))
    return schedule


def build_drift_manifest(config: DriftConfig) -> pd.DataFrame:
    """Write the manifest of ``config`` and return it (one row per frame)."""
    source = Path(config.source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} not found: pass a labeled ImageFolder (<class>/*.jpg)")
    pools = {
        folder.name: sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for folder in sorted(source.iterdir())
        if folder.is_dir()
    }
    pools = {name: files for name, files in pools.items() if files}
    if len(pools) < 2:
        raise ValueError(f"{source} needs at least two class folders with images")
    rng = random.Random(config.seed)
    for files in pools.values():
        rng.shuffle(files)
    per_period = config.categories_per_period or max(1, len(pools) // 2)
    schedule = period_categories(sorted(pools), config.periods, per_period, config.carry_over, rng)

    out = Path(config.out)
    start, offset = pd.Timestamp(config.start, tz="UTC"), period_offset(config.period_length)
    cursor = dict.fromkeys(pools, 0)
    rows = []
    for index, shown in enumerate(schedule):
        begin, end = start + index * offset, start + (index + 1) * offset
        span = (end - begin).total_seconds()
        for category in shown:
            taken = pools[category][
                cursor[category] : cursor[category] + config.frames_per_category
            ]
            if len(taken) < config.frames_per_category:
                raise ValueError(
                    f"category '{category}' has too few images for {config.frames_per_category} "
                    f"new frames in period {index + 1}: lower --frames-per-category"
                )
            cursor[category] += len(taken)
            for n, path in enumerate(taken):
                rows.append(
                    {
                        "path": os.path.relpath(path.resolve(), out.resolve().parent),
                        "timestamp": (
                            begin + pd.Timedelta(seconds=rng.uniform(0, span))
                        ).isoformat(),
                        "vod_id": f"p{index + 1}-{category}-{n // config.frames_per_vod}",
                        "category": category,
                        "label": category,
                    }
                )
    manifest = pd.DataFrame(rows).sort_values("timestamp", kind="stable")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(out, manifest, index=False)
    return manifest


def drift_summary(manifest: pd.DataFrame, config: DriftConfig) -> pd.DataFrame:
    """Per period: frames, categories and the share carried over from the previous period."""
    start, offset = pd.Timestamp(config.start, tz="UTC"), period_offset(config.period_length)
    stamps = pd.to_datetime(manifest["timestamp"], utc=True, format="ISO8601")
    rows, previous = [], None
    for index in range(config.periods):
        begin, end = start + index * offset, start + (index + 1) * offset
        shown = set(manifest.loc[(stamps >= begin) & (stamps < end), "category"])
        carried = len(shown & previous) / len(shown) if previous is not None and shown else None
        rows.append(
            {
                "period": f"{begin:%Y-%m-%d}/{end:%Y-%m-%d}",
                "frames": int(((stamps >= begin) & (stamps < end)).sum()),
                "categories": ", ".join(sorted(shown)),
                "carried over": "—" if carried is None else f"{carried:.0%}",
            }
        )
        previous = shown
    return pd.DataFrame(rows)
