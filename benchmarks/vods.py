r"""``vods``: any stream's training images as ordered, correlated "VODs" (video-like frames).

``--stream-opt base=STREAM`` names the stream to build (with every other flag as usual:
``--manifest``, ``--periods``, ``--image-size``, ``--val-fraction``, ...), and
``--stream-opt frames=F`` (default 8, at least 2) how many frames each of its training
images becomes: ``F`` consecutive near-duplicates following a slow zoom and pan, frame 0
the image itself, VOD after VOD in the base's order (:func:`cl_ssl.streams.as_vods`,
:mod:`cl_ssl.data.vods`). Test and validation splits, labels and caps are the base's, so
the two streams' numbers are comparable; each experience's ``groups`` are its VOD ids.
Training frames are made in memory once, at build time (a disk-backed base, such as
``twitch-periods``, is decoded then): ``F`` x the training images' bytes, 8 x 3 KB per 32
px RGB image (about 100 MB for 4,000 training images of a period). Other ``--stream-opt``
keys go to the base stream. A period trains on ``F`` times its base's images; for the
base's number of steps, give it ``1 / F`` of the sources (``--max-images``, which samples
the test split from fewer sources too). Use it with ``--online``, which reads each
experience in arrival order; a shuffling loader would undo the correlation.

Example (the study's correlated-frames stream; ``clssl drift`` prints the ``--periods``):
    clssl drift ../shared/data/cifar10/train --out drift/manifest.csv --periods 2 \
        --categories-per-period 4 --carry-over 0.75 --frames-per-category 200
    clssl bench --stream vods --stream-opt base=twitch-periods --stream-opt frames=8 \
        --manifest drift/manifest.csv --periods 2020-01-01/2020-07-01,2020-07-01/2021-01-01 \
        --online --strategy replay --opt replay.buffer=minred
"""

from __future__ import annotations

from dataclasses import replace

from cl_ssl.registry import register_stream, streams
from cl_ssl.streams import SSLStream, StreamOptions, as_vods

FRAMES = 8
"""Frames per VOD by default (``--stream-opt frames=N``)."""


@register_stream("vods")
def vods(options: StreamOptions) -> SSLStream:
    """The ``base`` stream with each training image as a VOD of ``frames`` frames."""
    extra = dict(options.extra)
    base, text = extra.pop("base", None), str(extra.pop("frames", FRAMES))
    frames = int(text) if text.isdigit() else 0
    if frames < 2:
        raise ValueError(
            f"--stream-opt frames must be an integer of at least 2 (one frame is the base "
            f"stream itself), got '{text}'"
        )
    if base is None or base == "vods" or base not in streams:
        choices = ", ".join(n for n in streams.names() if n != "vods")
        given = "no base" if base is None else f"base '{base}'"
        raise ValueError(f"vods got {given}: add --stream-opt base=STREAM, one of: {choices}")
    stream = streams.get(base)(replace(options, extra=extra))
    return as_vods(stream, frames, options.split_seed, name="vods")
