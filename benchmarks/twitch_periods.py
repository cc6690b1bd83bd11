"""``twitch-periods``: frames of video streams over time, one experience per time period.

Reads a frame manifest (``--manifest frames.csv``; see :mod:`cl_ssl.data.manifest`, written
by ``clssl ingest`` or ``clssl drift``). Periods are explicit (``--periods
2020-01-01/2020-07-01,2021-07-01/2022-01-01``) or consecutive of one length from the first
timestamp (``--period-length 6M``, the default). Each period is split 90/10 into train and
test, deterministically by ``--split-seed``, by ``vod_id`` when the manifest has it so frames of
one VOD never sit on both sides; ``--val-fraction`` carves the validation split out of the
training VODs the same way (the experience's ``groups`` are the training frames' VODs).

Labels for evaluation come from ``label`` or else ``category`` (a game, say); without them
the stream reports the SSL loss only. Frames are indexed (headers checked) and decoded on
demand, resized to ``--image-size`` (default 32), so memory does not grow with the frames.
Unreadable files are skipped and counted; more than ``--max-bad-fraction``
(default 5%) of a period aborts with the files named. ``--max-images`` samples each period.
"""

from __future__ import annotations

import torch

from cl_ssl.data.image_folder import index_files
from cl_ssl.data.images import UNLABELED
from cl_ssl.data.manifest import (
    assign_periods,
    parse_periods,
    period_name,
    periods_by_length,
    read_manifest,
)
from cl_ssl.registry import register_stream
from cl_ssl.streams import ExperienceData, SSLStream, StreamOptions, make_stream, split_indices

DEFAULT_IMAGE_SIZE = 32
DEFAULT_PERIOD_LENGTH = "6M"


@register_stream("twitch-periods")
def twitch_periods(options: StreamOptions) -> SSLStream:
    """Time periods of a frame manifest (--manifest), split by VOD."""
    if options.manifest is None:
        raise ValueError(
            "twitch-periods needs --manifest FRAMES.csv (build one with `clssl ingest` "
            "or `clssl drift`)"
        )
    frames = read_manifest(options.manifest)
    if options.periods:
        periods = parse_periods(options.periods)
    else:
        length = options.period_length or DEFAULT_PERIOD_LENGTH
        periods = periods_by_length(frames.timestamp.min(), frames.timestamp.max(), length)
    label_column = next((c for c in ("label", "category") if (frames[c] != "").any()), None)
    names = sorted(set(frames[label_column]) - {""}) if label_column else []
    size = options.image_size or DEFAULT_IMAGE_SIZE

    experiences, skipped = [], 0
    for position, rows in enumerate(assign_periods(frames, periods)):
        name = period_name(periods[position])
        if options.max_images is not None and len(rows) > options.max_images:
            rows = rows.sample(n=options.max_images, random_state=options.split_seed + position)
            rows = rows.sort_values("timestamp", kind="stable")
        labels = torch.tensor(
            [names.index(v) if v in names else UNLABELED for v in rows.get(label_column, [])]
            if label_column
            else [UNLABELED] * len(rows),
            dtype=torch.long,
        )
        # Headers only: frames are decoded when training reads them, after the cap.
        period, kept = index_files(
            list(rows["path"]),
            labels,
            size,
            options.max_bad_fraction,
            tuple(names),
            where=f"period {name}: ",
        )
        skipped += period.skipped
        rows = rows.iloc[kept]
        groups = list(rows["vod_id"]) if (rows["vod_id"] != "").all() else None
        train_idx, test_idx = split_indices(
            len(period), options.test_fraction, options.split_seed + position, groups
        )
        train_groups = None if groups is None else [groups[i] for i in train_idx.tolist()]
        experiences.append(
            ExperienceData(
                name, period.subset(train_idx), period.subset(test_idx), groups=train_groups
            )
        )
    return make_stream("twitch-periods", experiences, size, options, skipped_images=skipped)
