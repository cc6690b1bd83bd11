import math

import pytest
import torch
import torch.nn.functional as F

from cl_ssl.methods.simclr import SimCLR, SimCLROptions
from cl_ssl.models.ssl_model import SSLOutput


def naive_ntxent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.T / temperature
    n = a.shape[0]
    losses = []
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        others = [k for k in range(2 * n) if k != i]
        losses.append(-(sim[i, positive] - torch.logsumexp(sim[i, others], dim=0)))
    return torch.stack(losses).mean()


def test_loss_matches_a_naive_reference():
    torch.manual_seed(0)
    z = torch.randn(6, 2, 16)
    method = SimCLR(SimCLROptions(temperature=0.2))
    assert torch.allclose(method.loss(z), naive_ntxent(z[:, 0], z[:, 1], 0.2), atol=1e-5)


def test_aligned_views_beat_random_ones_and_constant_is_chance():
    torch.manual_seed(0)
    method = SimCLR()
    z = torch.randn(8, 16)
    aligned = method.loss(torch.stack([z, z], 1))
    random = method.loss(torch.randn(8, 2, 16))
    constant = method.loss(torch.ones(8, 2, 16))
    assert aligned < random
    assert constant.item() == pytest.approx(math.log(15), abs=1e-5)  # log(2B - 1)


def test_criterion_ignores_targets():
    z = torch.randn(4, 2, 8)
    out = SSLOutput(torch.randn(4, 2, 3), z)
    method = SimCLR()
    assert torch.equal(method(out, torch.arange(4)), method(out, torch.zeros(4)))


def test_head_sizes_follow_the_paper():
    head = SimCLR().make_head(64)
    assert head(torch.randn(3, 64)).shape == (3, 128)


def test_one_view_is_rejected():
    with pytest.raises(ValueError, match="two views"):
        SimCLR().loss(torch.randn(4, 1, 8))


def cassle_contrastive(p, z, temperature):
    """CaSSLe's simclr_distill_loss_func, symmetrised (contrastive.py), row by row: each
    prediction picks its own teacher row among all 2B, and each teacher row its prediction."""
    p = F.normalize(p.flatten(0, 1), dim=1)
    z = F.normalize(z.flatten(0, 1), dim=1)
    n = p.shape[0]
    forward = backward = 0.0
    for a in range(n):
        logits = [float(p[a] @ z[b]) / temperature for b in range(n)]
        forward += math.log(sum(math.exp(x) for x in logits)) - logits[a]
        logits = [float(z[a] @ p[b]) / temperature for b in range(n)]
        backward += math.log(sum(math.exp(x) for x in logits)) - logits[a]
    return (forward + backward) / (2 * n)


def test_distillation_is_cassles_contrastive_form_at_its_own_temperature():
    torch.manual_seed(1)
    predicted = torch.randn(4, 2, 8, requires_grad=True)
    teacher = torch.randn(4, 2, 8, requires_grad=True)
    method = SimCLR()  # its own temperature 0.5 plays no part
    for temperature in (0.2, 0.1):
        term = method.distillation_loss(predicted, teacher, temperature)
        expected = cassle_contrastive(predicted.detach(), teacher.detach(), temperature)
        assert term.item() == pytest.approx(expected, rel=1e-5)
    assert method.distillation_loss(predicted, teacher).item() == pytest.approx(
        cassle_contrastive(predicted.detach(), teacher.detach(), 0.2), rel=1e-5
    )
    method.distillation_loss(predicted, teacher).backward()
    assert teacher.grad is None and predicted.grad.abs().sum() > 0
