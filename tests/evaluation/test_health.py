import math

import pytest
import torch

from cl_ssl.evaluation.health import (
    EmbeddingHealth,
    alignment,
    dimension_std,
    effective_rank,
    embedding_health,
    uniformity,
)


def gaussian(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_collapsed_batch_has_zero_std_rank_one_and_zero_uniformity():
    z = gaussian(1, 32).expand(64, -1)  # every row the same embedding
    health = embedding_health(z)
    assert health.std == 0.0 and health.std_ratio == 0.0
    assert health.effective_rank == pytest.approx(1.0, abs=1e-3)
    assert health.uniformity == pytest.approx(0.0, abs=1e-6)  # log E exp(0)
    assert health.alignment is None


def test_isotropic_gaussian_is_spread_over_every_dimension():
    d = 16
    z = gaussian(8192, d)
    # Normalised isotropic Gaussians are uniform on the sphere: every coordinate has mean 0
    # and variance exactly 1/D, so the std is 1/sqrt(D) up to sampling error.
    assert dimension_std(z) * math.sqrt(d) == pytest.approx(1.0, abs=0.02)
    # Singular values of an N x D Gaussian are sqrt(N) (1 +- sqrt(D/N)): p is near uniform.
    assert d - 0.1 < effective_rank(z) <= d + 1e-3
    # On S^(D-1), u = x.y has density ~ (1 - u^2)^((D-3)/2) and |x - y|^2 = 2 - 2u, so
    # uniformity = log E exp(-4 + 4u): integrate it numerically.
    u = torch.linspace(-1, 1, 200_001, dtype=torch.float64)
    density = (1 - u**2) ** ((d - 3) / 2)
    expected = math.log(
        float(torch.trapezoid(torch.exp(4 * u - 4) * density, u) / torch.trapezoid(density, u))
    )
    assert uniformity(z) == pytest.approx(expected, abs=0.01)


def test_std_matches_a_direct_computation():
    z = gaussian(50, 8)
    unit = z / z.norm(dim=1, keepdim=True)
    stds = [unit[:, j].numpy().std() for j in range(8)]  # numpy: population std
    assert dimension_std(z) == pytest.approx(sum(stds) / 8, rel=1e-5)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_rank_k_data_has_effective_rank_at_most_k(k):
    z = gaussian(200, k) @ gaussian(k, 24, seed=1)  # rank k in 24 dimensions
    rank = effective_rank(z)
    assert rank <= k + 1e-3
    assert rank > 0.5 * k  # k random directions carry comparable energy


def test_effective_rank_of_equal_orthogonal_directions_is_their_count():
    assert effective_rank(torch.eye(6)) == pytest.approx(6.0, abs=1e-4)
    # Unequal energies: p = (2/3, 1/3), exp(H) with H the Shannon entropy of p.
    z = torch.diag(torch.tensor([2.0, 1.0]))
    h = -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    assert effective_rank(z) == pytest.approx(math.exp(h), abs=1e-4)


def test_alignment_of_identical_and_antipodal_pairs():
    z = gaussian(30, 10)
    assert alignment(z, z) == pytest.approx(0.0, abs=1e-6)
    assert alignment(z, 3 * z) == pytest.approx(0.0, abs=1e-6)  # normalised: scale is free
    assert alignment(z, -z) == pytest.approx(4.0, abs=1e-5)
    assert alignment(z, -z, alpha=1.0) == pytest.approx(2.0, abs=1e-5)


def test_alignment_of_orthogonal_pairs_is_two():
    z0, z1 = torch.eye(4)[:2], torch.eye(4)[2:]
    assert alignment(z0, z1) == pytest.approx(2.0)  # |e_i - e_j|^2 = 2


def test_uniformity_matches_a_double_loop():
    z = gaussian(5, 3)
    unit = [row / row.norm() for row in z]
    terms = [
        math.exp(-2.0 * float((unit[i] - unit[j]).pow(2).sum()))
        for i in range(5)
        for j in range(i + 1, 5)
    ]
    assert uniformity(z) == pytest.approx(math.log(sum(terms) / len(terms)), rel=1e-5)
    assert uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-8.0)


def test_scaling_the_embeddings_changes_nothing():
    pair = gaussian(40, 2 * 12).reshape(40, 2, 12)
    plain, scaled = embedding_health(pair=pair), embedding_health(pair=7 * pair)
    for name in ("std", "std_ratio", "effective_rank", "alignment", "uniformity"):
        assert getattr(scaled, name) == pytest.approx(getattr(plain, name), rel=1e-4), name


def test_pair_gives_alignment_and_first_view_stats():
    pair = gaussian(64, 2 * 8).reshape(64, 2, 8)
    health = embedding_health(pair=pair)
    first = embedding_health(pair[:, 0])
    assert isinstance(health, EmbeddingHealth)
    assert health.alignment == pytest.approx(alignment(pair[:, 0], pair[:, 1]))
    assert (health.std, health.effective_rank, health.uniformity) == (
        first.std,
        first.effective_rank,
        first.uniformity,
    )
    with pytest.raises(AttributeError):
        health.std = 0.0  # frozen


def test_bf16_input_is_computed_in_float32():
    z = gaussian(256, 16)
    low = z.to(torch.bfloat16)
    health, reference = embedding_health(low), embedding_health(low.float())
    assert health == reference  # upcast first: identical to the float32 numbers
    assert health.std_ratio == pytest.approx(embedding_health(z).std_ratio, rel=1e-2)
    assert alignment(low, low) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    pair = gaussian(128, 2 * 16).reshape(128, 2, 16)
    on_gpu, on_cpu = embedding_health(pair=pair.cuda()), embedding_health(pair=pair)
    for name in ("std", "std_ratio", "effective_rank", "alignment", "uniformity"):
        assert getattr(on_gpu, name) == pytest.approx(getattr(on_cpu, name), rel=1e-4), name


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"embeddings \[N, D\]"):
        dimension_std(torch.randn(4))
    with pytest.raises(ValueError, match="equal shapes"):
        alignment(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="at least two embeddings"):
        uniformity(torch.randn(1, 4))
    with pytest.raises(ValueError, match=r"\[N, 2, D\]"):
        embedding_health(pair=torch.randn(4, 3, 5))
    with pytest.raises(ValueError, match="not both"):
        embedding_health(torch.randn(4, 5), pair=torch.randn(4, 2, 5))
    with pytest.raises(ValueError, match="give embeddings"):
        embedding_health()
