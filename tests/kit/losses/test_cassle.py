import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cl_ssl.kit.losses.cassle import cassle_predictor, predict_views
from cl_ssl.methods.distillation import contrastive_distillation, ssl_loss_distillation
from cl_ssl.methods.simclr import SimCLR


@pytest.fixture
def teacher():
    torch.manual_seed(0)
    return torch.randn(16, 2, 32)


def reference_contrastive(p, z, temperature):
    """CaSSLe's SimCLR distillation, entry by entry: every view of every image is one row;
    each prediction against all teacher rows, then each teacher row against all
    predictions, positive = same image and view, averaged over both directions."""
    rows_p = [p[i, v] for i in range(p.shape[0]) for v in range(p.shape[1])]
    rows_z = [z[i, v] for i in range(z.shape[0]) for v in range(z.shape[1])]
    n = len(rows_p)

    def sim(a, b):
        return float(a @ b / (a.norm() * b.norm())) / temperature

    forward = backward = 0.0
    for a in range(n):
        forward -= math.log(
            math.exp(sim(rows_p[a], rows_z[a])) / sum(math.exp(sim(rows_p[a], zb)) for zb in rows_z)
        )
        backward -= math.log(
            math.exp(sim(rows_z[a], rows_p[a])) / sum(math.exp(sim(rows_z[a], pb)) for pb in rows_p)
        )
    return (forward / n + backward / n) / 2


def test_contrastive_matches_a_hand_written_reference():
    torch.manual_seed(3)
    p, z = torch.randn(3, 2, 4), torch.randn(3, 2, 4)  # 3 images x 2 views x 4 dims
    for temperature in (0.2, 0.5):
        expected = reference_contrastive(p, z, temperature)
        assert contrastive_distillation(p, z, temperature).item() == pytest.approx(
            expected, rel=1e-5
        )


def test_contrastive_analytic_value_and_the_other_view_is_a_negative():
    """Prediction == teacher, views orthonormal: 1/t against 0 for the 2B - 1 others."""
    z = torch.eye(4).view(2, 2, 4)
    expected = math.log(1 + 3 * math.exp(-1 / 0.2))
    assert contrastive_distillation(z, z, 0.2).item() == pytest.approx(expected, rel=1e-6)
    # Moving image 0's *other* teacher view onto the anchor's makes it a hard negative.
    moved = z.clone()
    moved[0, 1] = z[0, 0] + 1e-3 * z[0, 1]
    assert contrastive_distillation(z, moved, 0.2) > contrastive_distillation(z, z, 0.2) + 0.1


def test_temperature_changes_the_term(teacher):
    predicted = teacher + torch.randn_like(teacher)
    values = {t: contrastive_distillation(predicted, teacher, t).item() for t in (0.1, 0.2, 0.5)}
    assert len({round(v, 4) for v in values.values()}) == 3
    with pytest.raises(ValueError, match="temperature"):
        contrastive_distillation(predicted, teacher, 0.0)


def test_contrastive_is_smallest_on_the_teacher(teacher):
    noise = torch.randn_like(teacher)
    at_teacher = contrastive_distillation(teacher, teacher).item()
    values = [contrastive_distillation(teacher + s * noise, teacher).item() for s in (0.3, 1, 3)]
    assert at_teacher < values[0] < values[1] < values[2]


def test_gradient_reaches_the_student_and_predictor_not_the_teacher(teacher):
    predictor = cassle_predictor(32)
    student = torch.randn_like(teacher, requires_grad=True)
    frozen = teacher.clone().requires_grad_(True)
    contrastive_distillation(predict_views(predictor, student), frozen).backward()
    assert student.grad.abs().sum() > 0 and frozen.grad is None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in predictor.parameters())


def test_generic_form_is_the_method_loss_per_view(teacher):
    loss = SimCLR().loss
    predicted = teacher + 0.5 * torch.randn_like(teacher)
    expected = (
        loss(torch.stack([predicted[:, 0], teacher[:, 0]], 1))
        + loss(torch.stack([predicted[:, 1], teacher[:, 1]], 1))
    ) / 2
    assert ssl_loss_distillation(loss, predicted, teacher).item() == pytest.approx(
        expected.item(), rel=1e-6
    )
    same = ssl_loss_distillation(loss, teacher, teacher).item()
    assert same < ssl_loss_distillation(loss, predicted, teacher).item()


def test_predictor_maps_views_dim_to_dim():
    predictor = cassle_predictor(24, hidden_dim=8)
    assert predict_views(predictor, torch.randn(5, 2, 24)).shape == (5, 2, 24)
    predictor.eval()  # row-wise in eval mode: predicting views == predicting each row
    x = torch.randn(5, 2, 24)
    assert torch.allclose(predict_views(predictor, x)[:, 1], predictor(x[:, 1]), atol=1e-6)


def test_shapes_are_checked(teacher):
    with pytest.raises(ValueError, match=r"\[B, V, D\]"):
        contrastive_distillation(teacher[:, 0], teacher[:, 0])
    with pytest.raises(ValueError, match=r"\[B, V, D\]"):
        ssl_loss_distillation(SimCLR().loss, teacher, teacher[:, :1])
    with pytest.raises(ValueError, match=r"\[B, V, D\]"):
        predict_views(nn.Identity(), teacher[:, 0])


def test_cosine_scale_invariance(teacher):
    """Projections enter through cosine similarities: rescaling them changes nothing."""
    predicted = teacher + torch.randn_like(teacher)
    assert contrastive_distillation(3 * predicted, F.normalize(teacher, dim=-1)).item() == (
        pytest.approx(contrastive_distillation(predicted, teacher).item(), rel=1e-5)
    )
