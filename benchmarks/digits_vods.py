"""``digits-vods``: digits-periods' five periods, trained on as ordered, correlated "VODs".

For testing single-pass training on video-like data, where consecutive frames are
near-duplicates. Each source training image of a period becomes one VOD of ``F``
consecutive frames (:data:`FRAMES` = 8; ``--stream-opt frames=N`` changes it), and the
period's training dataset is the arrival order: VOD after VOD, the frames of a VOD
consecutive. Avalanche's default training loader shuffles; a single-pass learner that wants
the arrival order must read the dataset in order. :class:`~cl_ssl.data.vods.VodFrames` tells
each frame's VOD (``vod_ids``) and position in it (``frame_index``); labels are the source's
(evaluation only).

Frames are made once at build time on uint8 tensors, seeded by ``--split-seed`` and the
period (:func:`cl_ssl.streams.as_vods`, as the ``vods`` stream does for any stream). The
8x8 source is first resized to the stream's image size (default 16) with ``harmonise``, the
resize ``pair`` and ``split`` use, so frame 0 is exactly what those streams would train on
(and ``clssl finetune``'s leak check recognises it). Every VOD then follows a slow camera
move, a zoom and pan (:func:`cl_ssl.data.vods.camera_paths`): consecutive frames differ by
~1 of 255 per pixel, first and last frame of a VOD by ~8.

Splits are digits-periods' own, reused, not recomputed: the same ``--split-seed`` gives the
same test images (the 8x8 sources, not duplicated) and the same validation images under
``--val-fraction``, so the two streams' numbers are comparable. They are carved from the
sources before any VOD is made, so a VOD lies wholly on one side; each experience's
``groups`` are its training frames' ``vod_ids``. ``--max-images`` caps source images as in
digits-periods; a period then trains on ``F`` times as many frames.

Example:
    >>> stream = digits_vods(StreamOptions(extra={"frames": "4"}))
    >>> train = stream.experiences[0].train       # VodFrames, 4 frames per source image
    >>> train.vod_ids[:6], train.frame_index[:6]
    (tensor([0, 0, 0, 0, 1, 1]), tensor([0, 1, 2, 3, 0, 1]))
"""

from __future__ import annotations

from dataclasses import replace

from cl_ssl.benchmarks.digits_periods import digits_periods

from cl_ssl.registry import register_stream
from cl_ssl.streams import SSLStream, StreamOptions, as_vods

FRAMES = 8
"""Frames per VOD by default (``--stream-opt frames=N``)."""


def frames_per_vod(options: StreamOptions) -> int:
    """``--stream-opt frames=N`` (default :data:`FRAMES`); any other stream option is an error."""
    unknown = sorted(set(options.extra) - {"frames"})
    if unknown:
        raise ValueError(f"digits-vods has no --stream-opt '{unknown[0]}'; choose from: frames")
    text = str(options.extra.get("frames", FRAMES))
    frames = int(text) if text.isdigit() else 0
    if frames < 1:
        raise ValueError(f"--stream-opt frames must be a positive integer, got '{text}'")
    return frames


@register_stream("digits-vods")
def digits_vods(options: StreamOptions) -> SSLStream:
    """digits-periods with each training image as a VOD of near-duplicate consecutive frames."""
    frames = frames_per_vod(options)
    periods = digits_periods(replace(options, extra={}))
    return as_vods(periods, frames, options.split_seed, name="digits-vods")
