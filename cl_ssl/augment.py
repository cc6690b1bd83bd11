"""The two-view augmentation component: raw uint8 batches in, two augmented views out.

Every path that needs augmented views (training, replayed samples, EWC's importance pass,
the evaluation SSL loss) goes through one :class:`TwoViewAugment`, so a strategy can never
see differently augmented data than another. Two interchangeable implementations:

- ``lightly``: Lightly's :class:`~lightly.transforms.SimCLRTransform` applied to every image
  (PIL), the reference definition of SimCLR's augmentation. ~900 images/s on this CPU.
- ``batched``: the same pipeline with Kornia on the whole batch on the training device, with
  independent random parameters per image, the colour-jitter order included
  (:class:`cl_ssl.color_jitter.PerImageColorJitter`). Several times faster; the default.

Grayscale images (C = 1) are repeated to three channels first, so every backbone and the
colour augmentations see RGB.

Example:
    >>> augment = make_augment("batched", AugmentConfig(input_size=16))
    >>> views = augment(torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8))
    >>> views.shape
    torch.Size([8, 2, 3, 16, 16])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cl_ssl.config import AugmentKind  # defined there, light for the CLI

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AugmentConfig:
    """SimCLR augmentation parameters, named and defaulted as in Lightly's ``SimCLRTransform``.

    ``gaussian_blur`` is the probability of blurring; it defaults to 0 because SimCLR turns
    blur off for small (CIFAR-sized) images. Use :meth:`for_image_size` for a sized default.
    """

    input_size: int = 32
    cj_prob: float = 0.8
    cj_strength: float = 1.0
    cj_bright: float = 0.8
    cj_contrast: float = 0.8
    cj_sat: float = 0.8
    cj_hue: float = 0.2
    min_scale: float = 0.08
    random_gray_scale: float = 0.2
    gaussian_blur: float = 0.0
    sigmas: tuple[float, float] = (0.1, 2.0)
    hf_prob: float = 0.5
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def for_image_size(cls, input_size: int) -> AugmentConfig:
        """Paper defaults for this resolution: blur (p=0.5) only above 64 px, as in SimCLR."""
        return cls(input_size=input_size, gaussian_blur=0.5 if input_size > 64 else 0.0)

    def jitter(self) -> tuple[float, float, float, float]:
        """(brightness, contrast, saturation, hue) after applying ``cj_strength``."""
        s = self.cj_strength
        return (s * self.cj_bright, s * self.cj_contrast, s * self.cj_sat, s * self.cj_hue)


class TwoViewAugment(Protocol):
    """Turns raw images into the inputs of an SSL step and of evaluation."""

    config: AugmentConfig

    def __call__(self, images: Tensor) -> Tensor:
        """uint8 ``[B, C, H, W]`` -> two augmented, normalised views ``[B, 2, 3, S, S]``."""
        ...

    def eval_view(self, images: Tensor) -> Tensor:
        """uint8 ``[B, C, H, W]`` -> one deterministic view ``[B, 3, S, S]`` (resize, normalise)."""
        ...


def _to_rgb_float(images: Tensor) -> Tensor:
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(
            f"augmentation expects uint8 images [B, C, H, W], got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    images = images.float().div_(255.0)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


class _EvalView:
    config: AugmentConfig

    def eval_view(self, images: Tensor) -> Tensor:
        x = _to_rgb_float(images)
        size = self.config.input_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
        mean = torch.tensor(self.config.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.config.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


class BatchedTwoViewAugment(_EvalView, nn.Module):
    """Lightly's SimCLR pipeline re-expressed with Kornia, per-image parameters, any device.

    Every random choice is per image and per view, as Lightly's per-image transform makes it:
    crop, flip, whether to jitter, the jitter factors *and order*
    (:class:`cl_ssl.color_jitter.PerImageColorJitter`), grayscale, blur.
    """

    def __init__(self, config: AugmentConfig) -> None:
        nn.Module.__init__(self)
        import kornia.augmentation as K  # lazily: importing cl_ssl.config must stay cheap

        from cl_ssl.color_jitter import PerImageColorJitter

        self.config = config
        brightness, contrast, saturation, hue = config.jitter()
        kernel = max(3, int(0.1 * config.input_size) // 2 * 2 + 1)
        blur = K.RandomGaussianBlur((kernel, kernel), config.sigmas, p=config.gaussian_blur)
        self.pipeline = K.AugmentationSequential(
            K.RandomResizedCrop(
                (config.input_size, config.input_size), scale=(config.min_scale, 1.0)
            ),
            K.RandomHorizontalFlip(p=config.hf_prob),
            PerImageColorJitter(brightness, contrast, saturation, hue, p=config.cj_prob),
            K.RandomGrayscale(p=config.random_gray_scale),
            # Kornia blurs every image and then keeps the p-selected ones: skip it at p = 0.
            *([blur] if config.gaussian_blur > 0 else []),
            K.Normalize(mean=torch.tensor(config.mean), std=torch.tensor(config.std)),
        )

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        x = _to_rgb_float(images)
        batch = x.shape[0]
        # One call over both copies: every image of every view draws its own parameters.
        views = self.pipeline(torch.cat([x, x]))
        return torch.stack([views[:batch], views[batch:]], dim=1)


class LightlyTwoViewAugment(_EvalView):
    """Lightly's ``SimCLRTransform`` on each image: the reference, CPU-bound implementation."""

    def __init__(self, config: AugmentConfig) -> None:
        from lightly.transforms import SimCLRTransform

        self.config = config
        self.transform = SimCLRTransform(
            input_size=config.input_size,
            cj_prob=config.cj_prob,
            cj_strength=config.cj_strength,
            cj_bright=config.cj_bright,
            cj_contrast=config.cj_contrast,
            cj_sat=config.cj_sat,
            cj_hue=config.cj_hue,
            min_scale=config.min_scale,
            random_gray_scale=config.random_gray_scale,
            gaussian_blur=config.gaussian_blur,
            sigmas=config.sigmas,
            hf_prob=config.hf_prob,
            normalize={"mean": list(config.mean), "std": list(config.std)},
        )

    def __call__(self, images: Tensor) -> Tensor:
        from torchvision.transforms.functional import to_pil_image

        device = images.device
        rgb = images.cpu()
        rgb = rgb.expand(-1, 3, -1, -1) if rgb.shape[1] == 1 else rgb
        pairs = [torch.stack(self.transform(to_pil_image(image))) for image in rgb]
        return torch.stack(pairs).to(device)


def make_augment(kind: AugmentKind, config: AugmentConfig) -> TwoViewAugment:
    """The augmentation implementation called ``kind`` ("batched" or "lightly")."""
    if kind == "batched":
        return BatchedTwoViewAugment(config)
    if kind == "lightly":
        return LightlyTwoViewAugment(config)
    raise ValueError(f"unknown augmentation '{kind}'; choose from: batched, lightly")
