import math

import pytest
import torch
import torch.nn.functional as F

from cl_ssl.kit.losses.distillation import ContrastiveDistillationLoss, RelationalDistillationLoss


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


def naive_per_view_infonce(student, teacher, temperature):
    """Image by image and view by view, straight from the docstring's formula."""
    batch, views, _ = student.shape
    total = 0.0
    for v in range(views):
        for i in range(batch):
            sims = [
                F.cosine_similarity(student[i, v], teacher[k, v], dim=0) / temperature
                for k in range(batch)
            ]
            denominator = sum(torch.exp(s) for s in sims)
            total += -torch.log(torch.exp(sims[i]) / denominator)
    return total / (batch * views)


@pytest.fixture
def views():
    """Student and teacher embeddings [B, V, D] of 6 images, 2 views."""
    torch.manual_seed(1)
    return torch.randn(6, 2, 8), torch.randn(6, 2, 8)


def test_contrastive_matches_a_naive_reference(views):
    student, teacher = views
    expected = naive_per_view_infonce(student, teacher, 0.2)
    assert ContrastiveDistillationLoss(0.2)(student, teacher).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


def test_contrastive_analytic_value_on_orthonormal_embeddings():
    """Two images, orthonormal, student == teacher: each anchor sees 1/t vs 0."""
    e = torch.eye(2).view(2, 1, 2)
    expected = math.log(1 + math.exp(-1 / 0.5))
    assert ContrastiveDistillationLoss(0.5)(e, e).item() == pytest.approx(expected, rel=1e-6)


def test_contrastive_views_never_interact(views):
    """L is the mean of independent per-view terms: editing view 1 (student and teacher),
    even making a student's view 1 equal to its view 0, leaves view 0's term unchanged.
    With both views flattened into one batch, s_0^1 is a negative of the anchor s_0^0."""
    loss = ContrastiveDistillationLoss(0.2)
    student, teacher = views

    def term(s, t, v):
        return loss(s[:, v : v + 1], t[:, v : v + 1])

    def view0(s, t):  # what is left of the loss without view 1's term
        return 2 * loss(s, t) - term(s, t, 1)

    assert loss(student, teacher).item() == pytest.approx(
        ((term(student, teacher, 0) + term(student, teacher, 1)) / 2).item(), rel=1e-6
    )
    edited_student, edited_teacher = student.clone(), teacher.clone()
    edited_student[0, 1] = student[0, 0]
    edited_teacher[:, 1] = torch.randn(6, 8)
    assert term(edited_student, edited_teacher, 1) != term(student, teacher, 1)
    assert view0(edited_student, edited_teacher).item() == pytest.approx(
        view0(student, teacher).item(), abs=1e-5
    )
    assert view0(edited_student, edited_teacher).item() == pytest.approx(
        term(student, teacher, 0).item(), abs=1e-5
    )


def test_contrastive_is_smallest_on_the_teacher(views):
    _, teacher = views
    loss = ContrastiveDistillationLoss(0.2)
    at_teacher = loss(teacher, teacher).item()
    noise = torch.randn_like(teacher)
    values = [loss(teacher + scale * noise, teacher).item() for scale in (0.3, 1.0, 3.0)]
    assert at_teacher < values[0] < values[1] < values[2]


def test_contrastive_gradient_reaches_only_the_student(views):
    _, teacher = views
    student = torch.randn_like(teacher, requires_grad=True)
    frozen = teacher.clone().requires_grad_(True)
    ContrastiveDistillationLoss()(student, frozen).backward()
    assert student.grad.abs().sum() > 0 and frozen.grad is None


def test_contrastive_needs_views(teacher):
    with pytest.raises(ValueError, match=r"\[B, V, D\]"):
        ContrastiveDistillationLoss()(teacher, teacher)


def test_relational_on_views_is_relational_on_the_flattened_views(views):
    student, teacher = views
    loss = RelationalDistillationLoss(0.2)
    assert torch.equal(loss(student, teacher), loss(student.flatten(0, 1), teacher.flatten(0, 1)))


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
