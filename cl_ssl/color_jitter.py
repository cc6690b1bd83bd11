"""torchvision's ``ColorJitter`` for a whole batch on any device: per-image factors and order.

Kornia's :class:`~kornia.augmentation.ColorJitter` draws one order of its four operations
per call, shared by every image of the batch; torchvision's (and so Lightly's
``SimCLRTransform``) draws it per image. :class:`PerImageColorJitter` draws it per image.
"""

from __future__ import annotations

from typing import Any

import kornia.augmentation as K
import torch
from torch import Tensor

_FACTOR_KEYS = ("brightness_factor", "contrast_factor", "saturation_factor", "hue_factor")


class PerImageColorJitter(K.ColorJitter):
    """torchvision's ``ColorJitter`` on a batch: every image draws its own factors *and* order.

    Kornia's :class:`~kornia.augmentation.ColorJitter` draws one order of its four operations
    per call, shared by the whole batch; torchvision (and so Lightly's ``SimCLRTransform``)
    draws ``torch.randperm(4)`` per image. Here every image gets its own permutation
    (``params["order"]``, ``[B, 4]``, drawn on the CPU like Kornia's factors), and for each
    of the four slots each operation runs once on the images that have it in that slot
    (16 indexed calls per batch, every image transformed exactly once per slot).

    Matches torchvision's ``ColorJitter(brightness, contrast, saturation, hue)``:

    - factors: brightness, contrast, saturation ~ U[max(0, 1 - x), 1 + x], hue ~ U[-h, h]
      with h <= 0.5 a fraction of the colour circle (Kornia's generator draws the same
      ranges; its functional hue op takes radians, so the factor is scaled by 2 pi);
    - ops, on RGB in [0, 1], clamped to [0, 1]: brightness ``f * x``; contrast
      ``f * x + (1 - f) * mean(gray(x))``; saturation ``f * x + (1 - f) * gray(x)``; hue: a
      shift of H in HSV (Kornia's ``adjust_brightness_accumulative``,
      ``adjust_contrast_with_mean_subtraction``, ``adjust_saturation_with_gray_subtraction``,
      ``adjust_hue``; gray = 0.299 R + 0.587 G + 0.114 B, torchvision 0.2989 R + ...:
      outputs agree within 1e-4);
    - an operation with a zero range (``hue=0``) is skipped, as torchvision skips ``None``.

    Example:
        >>> jitter = PerImageColorJitter(0.8, 0.8, 0.8, 0.2, p=1.0)
        >>> out = jitter(torch.rand(64, 3, 8, 8))
        >>> jitter._params["order"].shape  # one permutation of (b, c, s, h) per image
        torch.Size([64, 4])
    """

    def __init__(
        self, brightness: float, contrast: float, saturation: float, hue: float, p: float = 1.0
    ) -> None:
        super().__init__(brightness, contrast, saturation, hue, p=p)
        self._varies = tuple(x > 0 for x in (brightness, contrast, saturation, hue))

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        params = super().generate_parameters(batch_shape)
        batch = batch_shape[0]
        # argsort of uniform noise: a uniformly random permutation per row.
        keys = torch.rand(1 if self.same_on_batch else batch, 4)
        params["order"] = keys.argsort(dim=1).expand(batch, 4)
        return params

    def apply_transform(
        self,
        input: Tensor,
        params: dict[str, Tensor],
        flags: dict[str, Any],
        transform: Tensor | None = None,
    ) -> Tensor:
        steps = (
            self._brightness_fn,
            self._contrast_fn,
            self._saturation_fn,
            self._adjust_hue_turns,
        )
        factors = [params[key] for key in _FACTOR_KEYS]
        order = params["order"]  # CPU: selecting rows never waits for the device
        x = input.clamp(0.0, 1.0)
        for slot in range(4):
            out = torch.empty_like(x)
            for op in range(4):
                rows = (order[:, slot] == op).nonzero().squeeze(1)
                if rows.numel() == 0:
                    continue
                # A pageable CPU source is staged before the call returns: no device sync.
                index = rows.to(x.device, non_blocking=True)
                chosen = x.index_select(0, index)
                if self._varies[op]:
                    chosen = steps[op](chosen, factors[op][rows])
                out.index_copy_(0, index, chosen)
            x = out
        return x.clamp(0.0, 1.0)
