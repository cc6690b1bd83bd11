import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cl_ssl.methods import build_method
from cl_ssl.methods.vicreg import VICReg, VICRegOptions


def variance(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Hinge on each dimension's (unbiased) standard deviation over the batch, averaged."""
    std = torch.sqrt(z.var(0) + eps)
    return F.relu(1 - std).mean()


def covariance(z: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal covariances over the batch, divided by D."""
    n, d = z.shape
    centred = z - z.mean(0)
    cov = centred.T @ centred / (n - 1)
    return sum(cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j) / d


def paper_loss(z0, z1, lambda_=25.0, mu=25.0, nu=1.0):
    invariance = ((z0 - z1) ** 2).mean()
    return (
        lambda_ * invariance
        + mu * (variance(z0) + variance(z1)) / 2
        + nu * (covariance(z0) + covariance(z1))
    )


def test_loss_matches_the_paper_formula():
    torch.manual_seed(0)
    z = torch.randn(16, 2, 8) * torch.linspace(0.2, 2.0, 8)
    assert torch.allclose(VICReg().loss(z), paper_loss(z[:, 0], z[:, 1]), rtol=1e-5)
    weights = VICRegOptions(lambda_param=2.0, mu_param=3.0, nu_param=0.5)
    expected = paper_loss(z[:, 0], z[:, 1], 2.0, 3.0, 0.5)
    assert torch.allclose(VICReg(weights).loss(z), expected, rtol=1e-5)


def test_identical_views_have_no_invariance_term():
    torch.manual_seed(0)
    z = torch.randn(16, 8)
    same = torch.stack([z, z], 1)
    without_invariance = VICReg(VICRegOptions(lambda_param=0.0))
    assert torch.equal(VICReg().loss(same), without_invariance.loss(same))
    other = torch.stack([z, torch.randn(16, 8)], 1)
    gap = VICReg().loss(other) - without_invariance.loss(other)
    assert torch.allclose(gap, 25 * F.mse_loss(other[:, 0], other[:, 1]))


def test_collapse_costs_the_full_variance_hinge():
    """Constant embeddings: std 0 in every dimension, so the loss is mu * (1 - sqrt(eps))."""
    collapsed = torch.ones(16, 2, 8)
    assert VICReg().loss(collapsed).item() == pytest.approx(25 * (1 - 1e-2), rel=1e-6)


def test_head_is_the_papers_projector():
    method = build_method("vicreg", {"vicreg": {"hidden-dim": "48", "output-dim": "24"}})
    linears = [m for m in method.make_head(16).modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(16, 48), (48, 48), (48, 24)]
    two = build_method("vicreg", {"vicreg": {"num-layers": "2"}}).make_head(16)
    assert sum(isinstance(m, nn.Linear) for m in two.modules()) == 2
    assert method.make_predictor() is None
    with pytest.raises(ValueError, match="num-layers"):
        VICRegOptions(num_layers=1)


def test_augmentations_use_byols_colour_jitter():
    config = VICReg().augment_config(96)
    assert config.jitter() == (0.4, 0.4, 0.2, 0.1)
    assert config.gaussian_blur == 0.5  # SimCLR's size rule: blur above 64 px


def test_one_view_is_rejected():
    with pytest.raises(ValueError, match="two views"):
        VICReg().loss(torch.randn(4, 3, 8))


def test_distillation_is_cassles_invariance_term_only():
    """predictive_mse.py: distill_lamb (25) * (invariance_loss(p1, z1) + invariance_loss(p2,
    z2)) / 2, invariance_loss = F.mse_loss; no variance or covariance term."""
    torch.manual_seed(1)
    predicted = torch.randn(8, 2, 6, requires_grad=True)
    teacher = torch.randn(8, 2, 6, requires_grad=True)
    term = VICReg().distillation_loss(predicted, teacher)
    per_view = [float(((predicted[:, v] - teacher[:, v]) ** 2).mean().detach()) for v in (0, 1)]
    assert term.item() == pytest.approx(25 * sum(per_view) / 2, rel=1e-6)
    term.backward()
    assert teacher.grad is None and predicted.grad.abs().sum() > 0
    # Analytic: a shift by 0.1 in every coordinate costs 25 * 0.01; collapse costs nothing more.
    z = torch.randn(8, 2, 6)
    assert VICReg().distillation_loss(z + 0.1, z).item() == pytest.approx(0.25, rel=1e-4)
    assert VICReg().distillation_loss(z, z).item() == 0
    constant = torch.ones(8, 2, 6)
    assert VICReg().distillation_loss(constant, constant).item() == 0  # no variance hinge


def test_pnr_negative_is_vicreg_pnrs_mse_with_negative_lamb_23():
    torch.manual_seed(2)
    q, negatives = torch.randn(8, 2, 6), torch.randn(8, 2, 6)
    per_view = [float(((q[:, v] - negatives[:, v]) ** 2).mean()) for v in (0, 1)]
    expected = 23 * sum(per_view) / 2
    assert VICReg().pnr_negative(q, negatives).item() == pytest.approx(expected, rel=1e-6)
