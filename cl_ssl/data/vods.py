"""Still images as ordered, correlated "VODs": ``F`` near-duplicate frames per image.

For testing single-pass training on video-like data, where consecutive frames are
near-duplicates. Each source image becomes one VOD of ``F`` consecutive frames following a
slow camera move, a zoom and pan (:func:`camera_paths`): frame ``j`` is a crop keeping at
least 85% of the area, ``j / (F - 1)`` of the way to the VOD's end crop, resized back to
full size; frame 0 is the source itself, byte for byte. The frames are in arrival order,
VOD after VOD, and :class:`VodFrames` tells each frame's VOD (``vod_ids``) and position in
it (``frame_index``). Whole-pixel shifts were tried and left out: at 16 px a one-pixel
shift changes a digit by 28-31 of 255 per pixel on average, twice the gap to the nearest
other digit of its class (13-16), so shifted frames would not be near-duplicates;
consecutive frames of a zoom and pan differ by ~1, first and last frame of a VOD by ~8.

:func:`cl_ssl.streams.as_vods` turns a whole stream's training splits into VODs.

Example:
    >>> data = ImageTensorDataset(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.tensor([3, 5]))
    >>> vods = make_vods(data, size=8, frames=4, seed=0)
    >>> vods.vod_ids.tolist(), vods.frame_index.tolist()[:4], vods.labels.tolist()[3:5]
    ([0, 0, 0, 0, 1, 1, 1, 1], [0, 1, 2, 3], [3, 5])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from cl_ssl.data.files import ImageDataset, in_memory
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.data.resolve import harmonise

MIN_AREA = 0.85
"""Smallest share of the image a frame's crop keeps."""


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
    """``dataset`` resized to ``size`` px, each image expanded into a VOD of ``frames`` frames.

    A disk-backed dataset is decoded here, once: the frames live in memory as uint8
    (``frames`` x the sources' bytes: 8 x 3 KB per 32 px RGB image).
    """
    sources = in_memory(harmonise(dataset, size, dataset.channels))
    generator = torch.Generator().manual_seed(seed)
    return VodFrames(
        vod_frames(sources.images, frames, generator),
        sources.labels.repeat_interleave(frames),
        sources.label_names,
        frames=frames,
    )
