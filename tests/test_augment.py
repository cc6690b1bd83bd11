import pytest
import torch

from cl_ssl.augment import AugmentConfig, make_augment

KINDS = ["batched", "lightly"]


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


@pytest.mark.parametrize("kind", KINDS)
def test_each_image_and_view_gets_its_own_parameters(kind):
    same = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8).repeat(8, 1, 1, 1)
    torch.manual_seed(0)
    views = make_augment(kind, AugmentConfig(input_size=16))(same).flatten(2)
    # 8 copies of one image give 16 distinct views (one batched call would repeat them).
    distinct = {tuple(v.round(decimals=4).tolist()) for v in views.flatten(0, 1)}
    assert len(distinct) == 16


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


def test_implementations_agree_in_distribution(images):
    """Both paths implement the same pipeline: pixel statistics over many views match."""
    batch = images.repeat(16, 1, 1, 1)
    torch.manual_seed(1)
    stats = {}
    for kind in KINDS:
        views = make_augment(kind, AugmentConfig(input_size=12))(batch)
        stats[kind] = (views.mean().item(), views.std().item())
    assert abs(stats["batched"][0] - stats["lightly"][0]) < 0.15
    assert abs(stats["batched"][1] - stats["lightly"][1]) < 0.15


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
