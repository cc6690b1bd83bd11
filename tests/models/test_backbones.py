import pytest
import torch

from cl_ssl.models import SmallResNet, SSLModel
from cl_ssl.registry import backbones


@pytest.mark.parametrize("name", backbones.names())
@pytest.mark.parametrize("size", [16, 96])
def test_every_backbone_maps_images_to_its_feature_dim(name, size):
    backbone = backbones.get(name)(size).eval()
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, size, size))
    assert features.shape == (2, backbone.feature_dim)


def test_resnet18_uses_cifar_stem_only_for_small_inputs():
    small, large = backbones.get("resnet18")(32), backbones.get("resnet18")(224)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert isinstance(small.maxpool, torch.nn.Identity)
    assert large.conv1.kernel_size == (7, 7)


def test_small_resnet_is_small():
    params = sum(p.numel() for p in SmallResNet().parameters())
    assert 0.2e6 < params < 0.4e6


def test_ssl_model_keeps_views_apart():
    torch.manual_seed(0)
    model = SSLModel(SmallResNet(), torch.nn.Linear(128, 8)).eval()
    views = torch.randn(3, 2, 3, 8, 8)
    out = model(views)
    assert out.features.shape == (3, 2, 128) and out.projections.shape == (3, 2, 8)
    alone = model(views[:, 1])  # a single view [B, 3, H, W] is V = 1
    assert torch.allclose(alone.projections[:, 0], out.projections[:, 1], atol=1e-5)
    assert torch.allclose(model.embed(views[:, 0]), out.features[:, 0], atol=1e-5)
