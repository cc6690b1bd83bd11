import math

import pytest
import torch

from cl_ssl.kit.losses.pnr import (
    mean_squared_error,
    negative_cosine,
    other_views,
    pnr_contrastive_regularization,
    pnr_contrastive_ssl,
    pnr_ssl_excess,
    pseudo_negative_regularization,
)
from cl_ssl.methods.simclr import SimCLR, SimCLROptions


def rows(x):
    """[B, V, D] -> list of (image, view, vector), every view of every image."""
    return [(i, v, x[i, v]) for i in range(x.shape[0]) for v in range(x.shape[1])]


def cos(a, b):
    return float(a @ b) / (float(a.norm()) * float(b.norm()))


def reference_ssl(z, z_prev, t):
    """PNR's SSL term from the definition: anchor z_a, positive the other view of its image,
    denominator every other current view and every other teacher view."""
    current, previous = rows(z), rows(z_prev)
    total = 0.0
    for a, (i, v, za) in enumerate(current):
        positive = next(zb for (j, w, zb) in current if j == i and w != v)
        denominator = sum(
            math.exp(cos(za, zb) / t) for b, (_, _, zb) in enumerate(current) if b != a
        )
        denominator += sum(
            math.exp(cos(za, zb) / t) for b, (_, _, zb) in enumerate(previous) if b != a
        )
        total -= math.log(math.exp(cos(za, positive) / t) / denominator)
    return total / len(current)


def reference_reg(p, z_prev, z, t):
    """PNR's regularization term from the definition: anchor p_a, positive z_a^-, denominator
    the other teacher views and the other current views (the positive itself left out)."""
    predicted, previous, current = rows(p), rows(z_prev), rows(z)
    total = 0.0
    for a, (_, _, pa) in enumerate(predicted):
        denominator = sum(
            math.exp(cos(pa, zb) / t) for b, (_, _, zb) in enumerate(previous) if b != a
        )
        denominator += sum(
            math.exp(cos(pa, zb) / t) for b, (_, _, zb) in enumerate(current) if b != a
        )
        total -= math.log(math.exp(cos(pa, previous[a][2]) / t) / denominator)
    return total / len(predicted)


@pytest.fixture
def triple():
    torch.manual_seed(4)
    return torch.randn(3, 2, 5), torch.randn(3, 2, 5), torch.randn(3, 2, 5)  # z, z^-, p


@pytest.mark.parametrize("temperature", [0.2, 0.5])
def test_ssl_term_matches_the_definition(triple, temperature):
    z, z_prev, _ = triple
    expected = reference_ssl(z, z_prev, temperature)
    assert pnr_contrastive_ssl(z, z_prev, temperature).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("temperature", [0.2, 0.5])
def test_excess_is_the_ssl_term_minus_simclrs_nt_xent(triple, temperature):
    """What the plugin adds on top of the template's NT-Xent gives exactly PNR's SSL term."""
    z, z_prev, _ = triple
    nt_xent = SimCLR(SimCLROptions(temperature=temperature)).loss(z)
    total = nt_xent + pnr_ssl_excess(z, z_prev, temperature)
    assert total.item() == pytest.approx(reference_ssl(z, z_prev, temperature), rel=1e-5)
    assert pnr_ssl_excess(z, z_prev, temperature) > 0


@pytest.mark.parametrize("temperature", [0.1, 0.2])
def test_regularization_matches_the_definition(triple, temperature):
    z, z_prev, p = triple
    expected = reference_reg(p, z_prev, z, temperature)
    got = pnr_contrastive_regularization(p, z_prev, z, temperature).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_analytic_values_on_orthonormal_views():
    """Four orthonormal views (B=2, V=2): every cross similarity is 0.

    SSL: positive logit 0 against 3 current + 3 teacher candidates at 0 -> log 6, where
    NT-Xent alone is log 3 (excess log 2). Regularization with p = z^-: positive logit 1/t,
    outside its denominator of 3 + 3 zeros -> log 6 - 1/t."""
    e = torch.eye(4).view(2, 2, 4)
    assert pnr_contrastive_ssl(e, e, 0.5).item() == pytest.approx(math.log(6), rel=1e-6)
    assert SimCLR().loss(e).item() == pytest.approx(math.log(3), rel=1e-6)
    assert pnr_ssl_excess(e, e, 0.5).item() == pytest.approx(math.log(2), rel=1e-6)
    reg = pnr_contrastive_regularization(e, e, e, 0.2).item()
    assert reg == pytest.approx(math.log(6) - 1 / 0.2, rel=1e-6)


def test_the_teachers_other_views_are_pseudo_negatives():
    """Moving a teacher embedding of another image onto the anchor's positive raises the SSL
    term: a pseudo-negative now competes with the positive."""
    e = torch.eye(4).view(2, 2, 4)
    moved = e.clone()
    moved[1, 0] = e[0, 1]  # image 1's teacher view sits on image 0's positive
    assert pnr_contrastive_ssl(e, moved, 0.5) > pnr_contrastive_ssl(e, e, 0.5) + 0.01


@pytest.mark.parametrize("temperature", [0.2, 0.5])
def test_teacher_equal_to_student_doubles_every_denominator(triple, temperature):
    """z^- = z (an experience's first step with batch-statistics BatchNorm): with the anchor's
    own teacher view masked, S^-_a = S_a, so the excess is log 2 whatever the batch."""
    z = triple[0]
    assert pnr_ssl_excess(z, z, temperature).item() == pytest.approx(math.log(2), rel=1e-5)


def test_gradients_reach_current_embeddings_never_the_teacher(triple):
    z, z_prev, p = (t.clone().requires_grad_(True) for t in triple)
    (pnr_contrastive_ssl(z, z_prev, 0.5) + pnr_contrastive_regularization(p, z_prev, z)).backward()
    assert z_prev.grad is None
    assert z.grad.abs().sum() > 0 and p.grad.abs().sum() > 0
    # In the regularization term alone the student's other views get gradient as
    # pseudo-negatives (the paper code does not detach them).
    z2 = triple[0].clone().requires_grad_(True)
    pnr_contrastive_regularization(triple[2], triple[1], z2).backward()
    assert z2.grad.abs().sum() > 0


def test_pseudo_negative_is_the_teachers_other_view_of_the_same_image():
    torch.manual_seed(5)
    p, z_prev = torch.randn(4, 2, 6), torch.randn(4, 2, 6)
    swapped = other_views(z_prev)
    assert torch.equal(swapped[:, 0], z_prev[:, 1]) and torch.equal(swapped[:, 1], z_prev[:, 0])
    expected = sum(cos(p[i, v], z_prev[i, 1 - v]) for i in range(4) for v in range(2)) / 8
    got = pseudo_negative_regularization(p, z_prev).item()
    assert got == pytest.approx(expected, rel=1e-5)  # -D with D = negative cosine: +cos
    # Sitting on the pseudo-negatives is the worst case (+1), opposite them the best (-1).
    assert pseudo_negative_regularization(swapped, z_prev).item() == pytest.approx(1)
    assert pseudo_negative_regularization(-swapped, z_prev).item() == pytest.approx(-1)


def test_pseudo_negative_with_another_distance_and_no_teacher_gradient():
    torch.manual_seed(6)
    p = torch.randn(4, 2, 6, requires_grad=True)
    z_prev = torch.randn(4, 2, 6, requires_grad=True)

    def mse(a, b):
        return ((a - b) ** 2).mean()

    term = pseudo_negative_regularization(p, z_prev, mse)
    assert term.item() == pytest.approx(-mse(p, other_views(z_prev)).item(), rel=1e-6)
    term.backward()
    assert z_prev.grad is None and p.grad.abs().sum() > 0


def test_mean_squared_error_is_vicregs_invariance_on_the_pseudo_negatives():
    """The paper code's VICReg form pushes up invariance_loss(p^v, z^{-,v'}) = F.mse_loss."""
    torch.manual_seed(7)
    p = torch.randn(4, 2, 6, requires_grad=True)
    z_prev = torch.randn(4, 2, 6, requires_grad=True)
    pairs = [(p[i, v].detach(), z_prev[i, 1 - v].detach()) for i in range(4) for v in range(2)]
    expected = -sum(float(((a - b) ** 2).mean()) for a, b in pairs) / len(pairs)
    term = pseudo_negative_regularization(p, z_prev, mean_squared_error)
    assert term.item() == pytest.approx(expected, rel=1e-5)
    term.backward()
    assert z_prev.grad is None and p.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="must match"):
        mean_squared_error(p, z_prev[:2])


def test_other_views_rolls_any_number_of_views():
    x = torch.arange(3.0).view(1, 3, 1).expand(2, 3, 1)
    assert other_views(x)[0, :, 0].tolist() == [1.0, 2.0, 0.0]
    with pytest.raises(ValueError, match="V >= 2"):
        other_views(torch.randn(4, 1, 3))


def test_shapes_and_temperatures_are_checked(triple):
    z, z_prev, p = triple
    with pytest.raises(ValueError, match=r"\[B, 2, D\]"):
        pnr_contrastive_ssl(z[:, :1], z_prev[:, :1], 0.5)
    with pytest.raises(ValueError, match=r"\[B, 2, D\]"):
        pnr_contrastive_regularization(p, z_prev[:2], z)
    with pytest.raises(ValueError, match="temperature"):
        pnr_ssl_excess(z, z_prev, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        pnr_contrastive_regularization(p, z_prev, z, -1.0)
    with pytest.raises(ValueError, match="must match"):
        negative_cosine(p, z_prev[:2])
