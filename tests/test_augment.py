import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from cl_ssl.augment import AugmentConfig, make_augment
from cl_ssl.color_jitter import PerImageColorJitter

KINDS = ["batched", "lightly"]
TORCHVISION_OPS = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)


def smooth_images(n: int, size: int = 32) -> torch.Tensor:
    """Real-looking colour images: random 4x4 colour fields upsampled (uint8 [n, 3, S, S])."""
    low = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    up = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return (up.clamp(0, 1) * 255).round().to(torch.uint8)


@pytest.fixture
def images():
    torch.manual_seed(0)
    return torch.randint(0, 256, (16, 3, 12, 12), dtype=torch.uint8)


@pytest.mark.parametrize("kind", KINDS)
def test_two_normalised_views_at_input_size(kind, images):
    views = make_augment(kind, AugmentConfig(input_size=16))(images)
    assert views.shape == (16, 2, 3, 16, 16) and views.dtype == torch.float32
    assert torch.isfinite(views).all()
    # Normalised with ImageNet statistics: roughly centred, unit-ish spread.
    assert -1.0 < views.mean().item() < 1.0 and 0.3 < views.std().item() < 2.0


def distinct_views(views: torch.Tensor) -> int:
    return len({tuple(v.round(decimals=4).tolist()) for v in views.flatten(2).flatten(0, 1)})


@pytest.mark.parametrize("kind", KINDS)
def test_each_image_and_view_gets_its_own_parameters(kind):
    same = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8).repeat(8, 1, 1, 1)
    torch.manual_seed(0)
    views = make_augment(kind, AugmentConfig(input_size=16))(same)
    # 8 copies of one image give 16 distinct views (one batched call would repeat them).
    assert distinct_views(views) == 16


@pytest.mark.parametrize("kind", KINDS)
def test_crops_alone_vary_per_image_and_view(kind):
    same = smooth_images(1, size=64).repeat(8, 1, 1, 1)
    no_colour = AugmentConfig(input_size=16, cj_prob=0.0, random_gray_scale=0.0, hf_prob=0.0)
    torch.manual_seed(0)
    # Crop boxes are whole pixels, so two of 16 may coincide by chance; one shared crop gives 1.
    assert distinct_views(make_augment(kind, no_colour)(same)) >= 15


@pytest.mark.parametrize("kind", KINDS)
def test_colour_jitter_alone_varies_per_image_and_view(kind):
    # A constant colour is unchanged by any crop or flip: only the jitter can tell views apart.
    flat = torch.tensor([200, 90, 40], dtype=torch.uint8).view(1, 3, 1, 1).expand(8, 3, 16, 16)
    jitter_only = AugmentConfig(input_size=16, cj_prob=1.0, random_gray_scale=0.0)
    torch.manual_seed(0)
    assert distinct_views(make_augment(kind, jitter_only)(flat.contiguous())) == 16


def test_jitter_order_is_drawn_per_image():
    augment = make_augment("batched", AugmentConfig(input_size=8))
    torch.manual_seed(0)
    augment(torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8))  # 64 views
    (order,) = [m._params["order"] for m in augment.pipeline.children() if "order" in m._params]
    assert order.shape == (64, 4)  # Kornia's own ColorJitter: one order [4] for all
    assert torch.equal(order.sort(dim=1).values, torch.arange(4).expand(64, 4))
    # 64 uniform draws from 24 permutations: ~22 distinct expected; one shared order gives 1.
    assert len({tuple(row) for row in order.tolist()}) >= 15


def _torchvision_jitter(image: torch.Tensor, order, factors) -> torch.Tensor:
    for op in order:
        image = TORCHVISION_OPS[op](image, float(factors[op]))
    return image


def test_each_image_is_torchvision_colour_jitter_in_its_own_order():
    jitter = PerImageColorJitter(0.8, 0.8, 0.8, 0.2, p=1.0)
    torch.manual_seed(0)
    images = torch.rand(32, 3, 8, 8)
    out = jitter(images)
    params = jitter._params
    factors = torch.stack(
        [params[k] for k in ("brightness_factor", "contrast_factor", "saturation_factor")]
        + [params["hue_factor"]],
        dim=1,
    )  # [B, 4]: (b, c, s, h), hue as a fraction of the circle
    assert factors[:, :3].min() >= 0.2 and factors[:, :3].max() <= 1.8
    assert factors[:, 3].abs().max() <= 0.2
    shared = params["order"][0].tolist()
    differs = 0
    for i, image in enumerate(images):
        own = _torchvision_jitter(image, params["order"][i].tolist(), factors[i])
        torch.testing.assert_close(out[i], own, atol=2e-3, rtol=0)
        other = _torchvision_jitter(image, shared, factors[i])
        differs += int((other - own).abs().max() > 1e-2)
    assert differs > 10  # the order matters: image 0's order would give other images


def test_zero_jitter_ranges_leave_images_unchanged():
    images = torch.rand(16, 3, 8, 8)
    out = PerImageColorJitter(0.0, 0.0, 0.0, 0.0, p=1.0)(images)
    torch.testing.assert_close(out, images)


@pytest.mark.parametrize("kind", KINDS)
def test_grayscale_is_repeated_to_rgb(kind):
    gray = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    augment = make_augment(kind, AugmentConfig(input_size=8, cj_prob=0.0, random_gray_scale=0.0))
    views = augment(gray)
    assert views.shape == (4, 2, 3, 8, 8)
    # Without colour jitter a repeated gray image stays gray after un-normalising.
    mean = torch.tensor(augment.config.mean).view(3, 1, 1)
    std = torch.tensor(augment.config.std).view(3, 1, 1)
    raw = views * std + mean
    assert torch.allclose(raw[:, :, 0], raw[:, :, 1], atol=1e-5)


def test_implementations_agree_in_distribution():
    """Both paths implement the same pipeline: per-channel statistics over many views match."""
    batch = smooth_images(256)
    config = AugmentConfig(input_size=32)
    mean, std = torch.tensor(config.mean), torch.tensor(config.std)
    low, high = -mean / std, (1 - mean) / std  # normalised 0 and 1
    stats = {}
    for kind in KINDS:
        torch.manual_seed(1)
        views = make_augment(kind, config)(batch)
        assert views.shape == (256, 2, 3, 32, 32) and views.dtype == torch.float32
        channels = views.transpose(0, 2).flatten(1)  # [3, all pixels of all views]
        stats[kind] = torch.stack([c(channels, 1) for c in (_min, _max, _mean, _std)])
        # Every pixel is a normalised value in [0, 1], and the jitter reaches both ends.
        torch.testing.assert_close(stats[kind][0], low, atol=0.05, rtol=0)
        torch.testing.assert_close(stats[kind][1], high, atol=0.05, rtol=0)
    torch.testing.assert_close(stats["batched"][2:], stats["lightly"][2:], atol=0.15, rtol=0)


def _min(x, dim):
    return x.min(dim).values


def _max(x, dim):
    return x.max(dim).values


def _mean(x, dim):
    return x.mean(dim)


def _std(x, dim):
    return x.std(dim)


def test_eval_view_is_deterministic(images):
    augment = make_augment("batched", AugmentConfig(input_size=16))
    first, second = augment.eval_view(images), augment.eval_view(images)
    assert first.shape == (16, 3, 16, 16) and torch.equal(first, second)


def test_rejects_float_input():
    with pytest.raises(ValueError, match="uint8"):
        make_augment("batched", AugmentConfig())(torch.rand(2, 3, 8, 8))


def test_unknown_kind():
    with pytest.raises(ValueError, match="choose from: batched, lightly"):
        make_augment("gpu", AugmentConfig())
