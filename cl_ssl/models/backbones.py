"""Backbones: image ``[B, 3, H, W]`` -> feature vector ``[B, feature_dim]``.

Each factory takes the stream's input resolution and returns a module with a
``feature_dim`` attribute. Inputs are always RGB: the augmentation repeats grayscale
images to three channels, so ImageNet-style stems and colour jitter need no special case.

| name | params | CPU images/s (batch 256, 2 views, 32 px) | use |
|---|---|---|---|
| ``small_resnet`` | 0.31M | ~390 | CPU default: demos, tests, CPU benchmarks |
| ``resnet18`` | 11.2M | ~20 (CIFAR stem) | GPU runs on CIFAR-sized images |
| ``resnet50`` | 23.5M | - | users' full-size frames on a GPU |

``resnet18`` and ``resnet50`` use the CIFAR stem (3x3 conv, stride 1, no max-pool) for
inputs of at most 64 px, where the ImageNet stem would shrink a 32 px image to 8 px before
the first block. Weights are always randomly initialised: nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torchvision.models import resnet18, resnet50
from torchvision.models.resnet import BasicBlock

from cl_ssl.registry import register_backbone

CIFAR_STEM_MAX_SIZE = 64


class SmallResNet(nn.Module):
    """A ResNet with one :class:`BasicBlock` per stage and narrow widths, for the CPU.

    Args:
        widths: Channels of the four stages; stages 2-4 halve the resolution.
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, in_ch = [], widths[0]
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or in_ch != width:
                downsample = nn.Sequential(
                    nn.Conv2d(in_ch, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width)
                )
            stages.append(BasicBlock(in_ch, width, stride=stride, downsample=downsample))
            in_ch = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.stages(self.stem(x))).flatten(1)


def _torchvision_resnet(model: nn.Module, image_size: int) -> nn.Module:
    if image_size <= CIFAR_STEM_MAX_SIZE:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    model.feature_dim = model.fc.in_features
    model.fc = nn.Identity()
    return model


@register_backbone("small_resnet")
def small_resnet(image_size: int) -> nn.Module:
    """Widths 16-32-64-128, 0.31M parameters: the CPU default."""
    return SmallResNet((16, 32, 64, 128))


@register_backbone("small_resnet_wide")
def small_resnet_wide(image_size: int) -> nn.Module:
    """Widths 32-64-128-256, 1.2M parameters: more capacity at ~1/3 of the speed."""
    return SmallResNet((32, 64, 128, 256))


@register_backbone("resnet18")
def resnet18_backbone(image_size: int) -> nn.Module:
    """Torchvision ResNet-18 (512-d), CIFAR stem for inputs <= 64 px."""
    return _torchvision_resnet(resnet18(weights=None), image_size)


@register_backbone("resnet50")
def resnet50_backbone(image_size: int) -> nn.Module:
    """Torchvision ResNet-50 (2048-d), CIFAR stem for inputs <= 64 px."""
    return _torchvision_resnet(resnet50(weights=None), image_size)
