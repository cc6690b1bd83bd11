import pytest
import torch
import torch.nn.functional as F

from cl_ssl.losses.distillation import ContrastiveDistillationLoss, RelationalDistillationLoss


@pytest.fixture
def teacher():
    torch.manual_seed(0)
    return torch.randn(12, 16)


def naive_relational_kl(student, teacher, temperature):
    """Row by row, straight from the definition."""
    total = 0.0
    n = student.shape[0]
    zs, zt = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
    for i in range(n):
        others = [k for k in range(n) if k != i]
        p = torch.softmax(torch.stack([zt[i] @ zt[k] for k in others]) / temperature, 0)
        q = torch.softmax(torch.stack([zs[i] @ zs[k] for k in others]) / temperature, 0)
        total += (p * (p.log() - q.log())).sum()
    return total / n


@pytest.mark.parametrize("mode", ["kl", "mse"])
def test_relational_is_zero_for_identical_models(mode, teacher):
    assert RelationalDistillationLoss(0.1, mode)(teacher, teacher).item() == 0.0


@pytest.mark.parametrize("mode", ["kl", "mse"])
def test_relational_grows_with_the_perturbation(mode, teacher):
    loss = RelationalDistillationLoss(0.1, mode)
    noise = torch.randn_like(teacher)
    values = [loss(teacher + scale * noise, teacher).item() for scale in (0.05, 0.3, 1.0)]
    assert 0 < values[0] < values[1] < values[2]


def test_relational_is_invariant_to_scale_and_rotation(teacher):
    """Only the similarity structure counts: a rotated, rescaled student is not penalised."""
    rotation, _ = torch.linalg.qr(torch.randn(16, 16))
    student = 3.0 * teacher @ rotation
    assert RelationalDistillationLoss(0.1)(student, teacher).item() == pytest.approx(0, abs=1e-5)


def test_relational_kl_matches_a_naive_reference(teacher):
    student = torch.randn_like(teacher)
    expected = naive_relational_kl(student, teacher, 0.2)
    assert RelationalDistillationLoss(0.2)(student, teacher).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


def test_relational_gradient_reaches_only_the_student(teacher):
    student = torch.randn_like(teacher, requires_grad=True)
    frozen = teacher.clone().requires_grad_(True)
    RelationalDistillationLoss(0.1)(student, frozen).backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()
    assert student.grad.abs().sum() > 0 and frozen.grad is None


def test_contrastive_is_smallest_on_the_teacher(teacher):
    loss = ContrastiveDistillationLoss(0.2)
    at_teacher = loss(teacher, teacher).item()
    noise = torch.randn_like(teacher)
    values = [loss(teacher + scale * noise, teacher).item() for scale in (0.3, 1.0, 3.0)]
    assert at_teacher < values[0] < values[1] < values[2]


def test_contrastive_gradient_reaches_only_the_student(teacher):
    student = torch.randn_like(teacher, requires_grad=True)
    frozen = teacher.clone().requires_grad_(True)
    ContrastiveDistillationLoss()(student, frozen).backward()
    assert student.grad.abs().sum() > 0 and frozen.grad is None


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: RelationalDistillationLoss(temperature=0), "temperature"),
        (lambda: RelationalDistillationLoss(mode="l1"), "mode"),
        (lambda: ContrastiveDistillationLoss(temperature=-1), "temperature"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_shape_mismatch():
    with pytest.raises(ValueError, match="student and teacher"):
        RelationalDistillationLoss()(torch.randn(4, 8), torch.randn(5, 8))
