"""``digits-vods``: digits-periods' five periods, trained on as ordered, correlated "VODs".

For testing single-pass training on video-like data, where consecutive frames are
near-duplicates. Each source training image of a period becomes one VOD of ``F``
consecutive frames (:data:`FRAMES` = 8; ``--stream-opt frames=N`` changes it), and the
period's training dataset is the arrival order: VOD after VOD, the frames of a VOD
consecutive. Avalanche's default training loader shuffles; a single-pass learner that wants
the arrival order must read the dataset in order. :class:`VodFrames` tells each frame's VOD
(``vod_ids``) and position in it (``frame_index``); labels are the source's (evaluation only).

Frames are made once at build time on uint8 tensors, seeded by ``--split-seed`` and the
period. The 8x8 source is first resized to the stream's image size (default 16) with
``harmonise``, the resize ``pair`` and ``split`` use, so frame 0 is exactly what those
streams would train on (and ``clssl finetune``'s leak check recognises it). Every VOD then
follows a slow camera move, a zoom and pan (:func:`camera_paths`): frame ``j`` is a crop
keeping at least 85% of the area, ``j / (F - 1)`` of the way to the VOD's end crop, resized
back to full size. Whole-pixel shifts were tried and left out: at 16 px a one-pixel shift
changes a digit by 28-31 of 255 per pixel on average, twice the gap to the nearest other
digit of its class (13-16), so shifted frames would not be near-duplicates; consecutive
frames of a zoom and pan differ by ~1, first and last frame of a VOD by ~8.

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

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from cl_ssl.benchmarks.digits_periods import AUGMENT_OVERRIDES, digits_periods
from torch import Tensor

from cl_ssl.data.files import ImageDataset, in_memory
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.data.resolve import harmonise
from cl_ssl.registry import register_stream
from cl_ssl.streams import ExperienceData, SSLStream, StreamOptions, make_stream

FRAMES = 8
"""Frames per VOD by default (``--stream-opt frames=N``)."""
MIN_AREA = 0.85
"""Smallest share of the image a frame's crop keeps."""
SEED_OFFSET = 104_729
"""Keeps the frames' random draws apart from the split's (seeded by split_seed + period)."""


@dataclass
class VodFrames(ImageTensorDataset):
    """Frames in arrival order: ``len / frames`` VODs of ``frames`` consecutive frames.

    A :meth:`subset` is a plain :class:`ImageTensorDataset`: a selection of frames no longer
    has the VOD layout.

    Example:
        >>> VodFrames(torch.zeros(6, 1, 4, 4, dtype=torch.uint8), torch.zeros(6), frames=3).vod_ids
        tensor([0, 0, 0, 1, 1, 1])
    """

    frames: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frames < 1 or len(self) % self.frames:
            raise ValueError(f"{len(self)} frames do not make VODs of {self.frames} frames")

    @property
    def vod_ids(self) -> Tensor:
        """VOD of every frame ``[N]``: 0 for the first ``frames`` frames, 1 for the next..."""
        return torch.arange(len(self)) // self.frames

    @property
    def frame_index(self) -> Tensor:
        """Position of every frame in its VOD ``[N]``, 0 to ``frames - 1``."""
        return torch.arange(len(self)) % self.frames


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


def camera_paths(vods: int, frames: int, generator: torch.Generator) -> Tensor:
    """Affine crops ``[vods * frames, 2, 3]`` (``F.affine_grid``'s ``theta``), VOD-major.

    Each VOD draws an end crop: side ``sqrt(a)`` of the image's, ``a`` uniform in
    ``[MIN_AREA, 1]``, centred anywhere it stays inside the image. Frame ``j`` takes the
    crop ``j / (frames - 1)`` of the way from the full image (frame 0) to it, so side and
    centre change linearly: a slow zoom and pan, every crop inside the image and keeping at
    least :data:`MIN_AREA` of it.
    """
    side_end = (MIN_AREA + (1 - MIN_AREA) * torch.rand(vods, generator=generator)).sqrt()
    # In [-1, 1] coordinates a crop of half-width s stays inside while |centre| <= 1 - s.
    centre_end = (2 * torch.rand(vods, 2, generator=generator) - 1) * (1 - side_end)[:, None]
    t = (torch.arange(frames) / max(frames - 1, 1)).repeat(vods)
    side = 1 + t * (side_end.repeat_interleave(frames) - 1)
    theta = torch.zeros(vods * frames, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = side
    theta[:, :, 2] = t[:, None] * centre_end.repeat_interleave(frames, dim=0)
    return theta


def vod_frames(images: Tensor, frames: int, generator: torch.Generator) -> Tensor:
    """``frames`` near-duplicates of each uint8 image ``[N, C, S, S]`` -> ``[N * frames, C, S, S]``.

    Frame ``j`` of image ``i`` is at row ``i * frames + j``: the crop of
    :func:`camera_paths` resized back to ``S`` (bilinear, borders replicated); frame 0 is
    the image itself.
    """
    n, channels, size, _ = images.shape
    theta = camera_paths(n, frames, generator)
    grid = F.affine_grid(theta, [n * frames, channels, size, size], align_corners=False)
    x = images.float().repeat_interleave(frames, dim=0)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    out = x.round_().clamp_(0, 255).to(torch.uint8)
    out[::frames] = images  # exactly the source, not a resampled copy of it
    return out


def make_vods(dataset: ImageDataset, size: int, frames: int, seed: int) -> VodFrames:
    """``dataset`` resized to ``size`` px, each image expanded into a VOD of ``frames`` frames."""
    sources = in_memory(harmonise(dataset, size, dataset.channels))
    generator = torch.Generator().manual_seed(seed)
    return VodFrames(
        vod_frames(sources.images, frames, generator),
        sources.labels.repeat_interleave(frames),
        sources.label_names,
        frames=frames,
    )


@register_stream("digits-vods")
def digits_vods(options: StreamOptions) -> SSLStream:
    """digits-periods with each training image as a VOD of near-duplicate consecutive frames."""
    frames = frames_per_vod(options)
    periods = digits_periods(replace(options, extra={}))
    experiences = []
    for k, exp in enumerate(periods.experiences):
        seed = options.split_seed + k + SEED_OFFSET
        train = make_vods(exp.train, periods.image_size, frames, seed)
        experiences.append(ExperienceData(exp.name, train, exp.test, exp.domain, train.vod_ids))
    # The caps, splits and validation carve are digits-periods' (done above): applying them
    # again to frames would split VODs and thin the sources twice.
    stream = make_stream(
        "digits-vods",
        experiences,
        periods.image_size,
        replace(options, max_images=None, val_fraction=0.0),
        AUGMENT_OVERRIDES,
    )
    return replace(stream, eval_split=periods.eval_split)
