import math

import pytest
import torch
from torch import nn

from cl_ssl.kit.losses.cassle import predict_views
from cl_ssl.kit.losses.pfr import pfr_projector, projected_functional_regularization


def reference_pfr(projected, teacher):
    """The paper code's form, view by view: -(mean_i cos(p1_i, f1_i) + mean_i cos(p2_i, f2_i)) / 2,
    every cosine written out as a dot product over norms."""
    views = []
    for v in range(projected.shape[1]):
        cosines = [
            float(projected[i, v] @ teacher[i, v])
            / (float(projected[i, v].norm()) * float(teacher[i, v].norm()))
            for i in range(projected.shape[0])
        ]
        views.append(sum(cosines) / len(cosines))
    return -sum(views) / len(views)


def test_matches_a_hand_written_reference():
    torch.manual_seed(0)
    projected, teacher = torch.randn(5, 2, 6), torch.randn(5, 2, 6)
    expected = reference_pfr(projected, teacher)
    got = projected_functional_regularization(projected, teacher).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_analytic_values():
    """Aligned: -1; orthogonal: 0; opposite: +1; a 45 degree angle: -1/sqrt(2)."""
    e = torch.eye(4)
    teacher = torch.stack([e[0], e[1]]).expand(3, 2, 4)  # [B=3, V=2, F=4]
    assert projected_functional_regularization(2.5 * teacher, teacher).item() == pytest.approx(-1)
    orthogonal = torch.stack([e[2], e[3]]).expand(3, 2, 4)
    assert projected_functional_regularization(orthogonal, teacher).item() == pytest.approx(0)
    assert projected_functional_regularization(-teacher, teacher).item() == pytest.approx(1)
    tilted = teacher + orthogonal
    assert projected_functional_regularization(tilted, teacher).item() == pytest.approx(
        -1 / math.sqrt(2), rel=1e-6
    )


def test_gradient_reaches_the_student_and_projector_not_the_teacher():
    torch.manual_seed(1)
    projector = pfr_projector(8)
    student = torch.randn(6, 2, 8, requires_grad=True)
    teacher = torch.randn(6, 2, 8, requires_grad=True)
    projected_functional_regularization(predict_views(projector, student), teacher).backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in projector.parameters())


def test_projector_is_the_paper_codes_mlp():
    """Linear(F, F/2) - BatchNorm - ReLU - Linear(F/2, F), as CVPR_PFR's distill_predictor."""
    projector = pfr_projector(12)
    kinds = [type(m) for m in projector]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert (projector[0].in_features, projector[0].out_features) == (12, 6)
    assert (projector[3].in_features, projector[3].out_features) == (6, 12)
    assert pfr_projector(12, hidden_dim=5)[0].out_features == 5
    assert pfr_projector(1)[0].out_features == 1  # never an empty hidden layer
    assert predict_views(projector, torch.randn(4, 2, 12)).shape == (4, 2, 12)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\[B, V, F\]"):
        projected_functional_regularization(torch.randn(4, 8), torch.randn(4, 8))
    with pytest.raises(ValueError, match=r"\[B, V, F\]"):
        projected_functional_regularization(torch.randn(4, 2, 8), torch.randn(4, 2, 6))
