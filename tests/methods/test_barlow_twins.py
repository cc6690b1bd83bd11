import pytest
import torch
from torch import nn

from cl_ssl.methods import build_method
from cl_ssl.methods.barlow_twins import BarlowTwins, BarlowTwinsOptions
from cl_ssl.models.ssl_model import SSLOutput


def paper_loss(z0: torch.Tensor, z1: torch.Tensor, lambda_: float) -> torch.Tensor:
    """Algorithm 1 of the paper, written out: standardise each dimension over the batch.

    Lightly standardises with F.batch_norm in training mode: the *biased* variance plus
    BatchNorm's eps 1e-5, no affine parameters.
    """

    def standardise(z):
        return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)

    n, d = z0.shape
    c = standardise(z0).T @ standardise(z1) / n
    on_diagonal = sum((1 - c[i, i]) ** 2 for i in range(d))
    off_diagonal = sum(c[i, j] ** 2 for i in range(d) for j in range(d) if i != j)
    return on_diagonal + lambda_ * off_diagonal


def test_loss_matches_the_paper_formula():
    torch.manual_seed(0)
    z = torch.randn(16, 2, 8) * torch.linspace(0.5, 3.0, 8) + 2.0
    for lambda_ in (5e-3, 0.5):
        method = BarlowTwins(BarlowTwinsOptions(lambda_param=lambda_))
        expected = paper_loss(z[:, 0], z[:, 1], lambda_)
        assert torch.allclose(method.loss(z), expected, rtol=1e-5, atol=1e-5)


def test_each_dimension_is_standardised_over_the_batch():
    """A positive scale and a shift per dimension (and per view) leave the loss unchanged."""
    torch.manual_seed(0)
    z = torch.randn(32, 2, 8)
    scale, shift = torch.rand(2, 8) * 5 + 0.5, torch.randn(2, 8) * 10
    method = BarlowTwins()
    assert torch.allclose(method.loss(z * scale + shift), method.loss(z), rtol=1e-4)


def test_identical_decorrelated_views_cost_nothing():
    """Equal views: C_ii = 1 (up to eps); orthogonal centred columns: C_ij = 0."""
    # QR of [1, X]: columns 1.. are orthogonal to the constant column (zero mean) and to
    # each other, so their standardised cross-correlation is the identity.
    q, _ = torch.linalg.qr(torch.cat([torch.ones(64, 1), torch.randn(64, 8)], 1))
    z = q[:, 1:] * 8
    loss = BarlowTwins().loss(torch.stack([z, z], 1))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert BarlowTwins().loss(torch.randn(64, 2, 8)) > 1.0


def test_head_is_the_papers_three_layer_projector():
    method = build_method(
        "barlow-twins", {"barlow-twins": {"hidden-dim": "48", "output-dim": "24"}}
    )
    head = method.make_head(16)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(16, 48), (48, 48), (48, 24)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in head.modules()) == 2
    assert method.make_predictor() is None
    assert BarlowTwins().options == BarlowTwinsOptions(5e-3, 2048, 2048)


def test_criterion_is_the_pair_loss_and_distillation_the_per_view_loss():
    torch.manual_seed(0)
    method = BarlowTwins()
    z = torch.randn(8, 2, 16)
    assert torch.equal(method(SSLOutput(torch.randn(8, 2, 4), z)), method.loss(z))
    predicted, teacher = torch.randn(8, 2, 16), torch.randn(8, 2, 16)
    per_view = [paper_loss(predicted[:, v], teacher[:, v], 5e-3) for v in (0, 1)]
    assert torch.allclose(method.distillation_loss(predicted, teacher), sum(per_view) / 2)


def cosine(a, b):
    return float(a @ b) / (float(a.norm()) * float(b.norm()))


def test_pnr_objective_is_ten_times_the_references():
    """PNR's barlow_pnr.py with the scripts' scale_loss 0.1: 0.1 * B(z1, z2) + 0.1 * mean_v
    B(q^v, t^v) - 1.0 * mean_v simsiam_loss_func(q^v, t^v'), simsiam_loss_func = -cos.
    Lightly's Barlow loss has no scale: every term here is the reference's times 10."""
    torch.manual_seed(1)
    method = BarlowTwins()
    z, q, t = torch.randn(16, 2, 8), torch.randn(16, 2, 8), torch.randn(16, 2, 8)
    swapped = t.flip(1)
    negative_cosine = -sum(cosine(q[i, v], swapped[i, v]) for i in range(16) for v in (0, 1)) / 32
    reference = 0.1 * paper_loss(z[:, 0], z[:, 1], 5e-3)
    reference += 0.1 * (paper_loss(q[:, 0], t[:, 0], 5e-3) + paper_loss(q[:, 1], t[:, 1], 5e-3)) / 2
    reference -= 1.0 * negative_cosine
    ours = method.loss(z) + method.distillation_loss(q, t) - method.pnr_negative(q, swapped)
    assert ours.item() == pytest.approx(10 * reference.item(), rel=1e-5)
    assert method.pnr_negative(q, swapped).item() == pytest.approx(10 * negative_cosine, rel=1e-5)


def test_augmentations_use_byols_colour_jitter():
    config = BarlowTwins().augment_config(32)
    assert (config.cj_bright, config.cj_contrast, config.cj_sat, config.cj_hue) == (
        0.4,
        0.4,
        0.2,
        0.1,
    )
    assert config.input_size == 32 and config.gaussian_blur == 0.0


def test_one_view_is_rejected():
    with pytest.raises(ValueError, match="two views"):
        BarlowTwins().loss(torch.randn(4, 1, 8))
