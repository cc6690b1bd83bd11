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
