import pytest
import torch
from torch import nn

from cl_ssl.losses.cassle import cassle_distillation, cassle_predictor
from cl_ssl.methods.simclr import SimCLR


@pytest.fixture
def teacher():
    torch.manual_seed(0)
    return torch.randn(16, 2, 32)


def test_identical_projections_through_identity_score_lower_than_perturbed(teacher):
    loss = SimCLR().loss
    same = cassle_distillation(loss, nn.Identity(), teacher, teacher).item()
    values = [
        cassle_distillation(loss, nn.Identity(), teacher + s * torch.randn_like(teacher), teacher)
        for s in (0.3, 1.0, 3.0)
    ]
    assert same < values[0].item() < values[1].item() < values[2].item()


def test_gradient_reaches_the_student_and_predictor_not_the_teacher(teacher):
    predictor = cassle_predictor(32)
    student = torch.randn_like(teacher, requires_grad=True)
    frozen = teacher.clone().requires_grad_(True)
    cassle_distillation(SimCLR().loss, predictor, student, frozen).backward()
    assert student.grad.abs().sum() > 0 and frozen.grad is None
    assert all(p.grad is not None for p in predictor.parameters())


def test_predictor_maps_dim_to_dim():
    assert cassle_predictor(24, hidden_dim=8)(torch.randn(5, 24)).shape == (5, 24)


def test_shapes_are_checked(teacher):
    with pytest.raises(ValueError, match=r"\[B, V, D\]"):
        cassle_distillation(SimCLR().loss, nn.Identity(), teacher[:, 0], teacher[:, 0])
