import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from cl_ssl.strategies.lwf_ssl import LwFSSLOptions, LwFSSLPlugin

from cl_ssl.bench import run_bench


def test_first_experience_equals_naive_exactly(tiny_bench):
    naive, lwf = run_bench(tiny_bench("naive,lwf-ssl")).strategies
    # Same weights after experience 0 -> identical first row (and untrained row).
    first = naive.metrics[naive.metrics.train_exp <= 0].drop(columns="strategy")
    second = lwf.metrics[lwf.metrics.train_exp <= 0].drop(columns="strategy")
    pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))
    # From experience 1 on, the distillation term changes training.
    assert not naive.loss_matrix.iloc[1:].equals(lwf.loss_matrix.iloc[1:])


class TeacherSpy(LwFSSLPlugin):
    """Records the distillation terms and the teacher's parameters."""

    def __init__(self, options):
        super().__init__(options)
        self.distill_terms: list[float] = []
        self.teacher_at_start: list[torch.Tensor] | None = None

    def before_training_exp(self, strategy, *args, **kwargs):
        super().before_training_exp(strategy, *args, **kwargs)
        if self.teacher.active:
            self.snapshot = [p.detach().clone() for p in strategy.model.parameters()]
            self.teacher_at_start = [p.detach().clone() for p in self.teacher.model.parameters()]

    def after_training_iteration(self, strategy, *args, **kwargs):
        if "distill" in strategy.loss_terms:
            self.distill_terms.append(strategy.loss_terms["distill"].item())


@pytest.mark.parametrize("mode", ["relational", "relational-mse", "contrastive"])
def test_teacher_is_the_previous_model_frozen_through_the_experience(
    mode, tiny_stream, make_template
):
    spy = TeacherSpy(LwFSSLOptions(mode=mode))
    strategy = make_template(tiny_stream, [spy], epochs=2)
    strategy.train(tiny_stream.benchmark.train_stream[0], eval_streams=[])
    assert not spy.teacher.active and spy.distill_terms == []
    strategy.train(tiny_stream.benchmark.train_stream[1], eval_streams=[])
    # The teacher started as the model after experience 0 ...
    for start, snapshot in zip(spy.teacher_at_start, spy.snapshot, strict=True):
        assert torch.equal(start, snapshot)
    # ... stayed bit-identical and gradient-free while the student trained ...
    for now, start in zip(spy.teacher.model.parameters(), spy.teacher_at_start, strict=True):
        assert torch.equal(now, start) and now.grad is None and not now.requires_grad
    moved = any(
        not torch.equal(p, s)
        for p, s in zip(strategy.model.parameters(), spy.snapshot, strict=True)
    )
    assert moved
    # ... and the distillation term was paid on every step, finite and positive.
    steps_per_epoch = math.ceil(len(tiny_stream.benchmark.train_stream[1].dataset) / 32)
    assert len(spy.distill_terms) == 2 * steps_per_epoch
    assert all(torch.isfinite(torch.tensor(spy.distill_terms))) and min(spy.distill_terms) > 0


class OutputsSpy(LwFSSLPlugin):
    """Keeps the student's and teacher's outputs and the term of the first distillation step."""

    def before_backward(self, strategy, *args, **kwargs):
        super().before_backward(strategy, *args, **kwargs)
        if self.teacher.active and not hasattr(self, "first"):
            student = strategy.mb_output
            teacher = self.teacher(strategy.mb_x)
            self.first = {
                field: (getattr(student, field).detach(), getattr(teacher, field))
                for field in ("features", "projections")
            }
            self.first["term"] = strategy.loss_terms["distill"].item()


def relational_kl(student, teacher, temperature):
    """1/N sum_i KL(P_i || Q_i) of the off-diagonal similarity rows, by hand (float64)."""
    s, t = student.flatten(0, 1).double(), teacher.flatten(0, 1).double()
    n = s.shape[0]
    total = 0.0
    for i in range(n):
        others = [j for j in range(n) if j != i]
        sim_s = torch.stack([F.cosine_similarity(s[i], s[j], dim=0) for j in others])
        sim_t = torch.stack([F.cosine_similarity(t[i], t[j], dim=0) for j in others])
        p, q = torch.softmax(sim_t / temperature, 0), torch.softmax(sim_s / temperature, 0)
        total += float((p * (p.log() - q.log())).sum())
    return total / n


def test_distillation_on_backbone_features(tiny_stream, make_template):
    """features=features: the term is lambda times the relational KL of the backbone
    features (at the temperature), not of the projections."""
    spy = OutputsSpy(LwFSSLOptions(features="features", lambda_=2.0, temperature=0.5))
    strategy = make_template(tiny_stream, [spy])
    for experience in tiny_stream.benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    term = spy.first["term"]
    on_features = relational_kl(*spy.first["features"], 0.5)
    on_projections = relational_kl(*spy.first["projections"], 0.5)
    assert term == pytest.approx(2.0 * on_features, rel=1e-4)
    assert abs(term - 2.0 * on_projections) > 0.05 * term


def test_distillation_slows_drift_from_the_teacher(tiny_stream, make_template):
    """With a heavy weight the student's similarity structure stays closer to the teacher's
    on the augmented views it is distilled on."""
    from cl_ssl.kit.losses.distillation import RelationalDistillationLoss

    drift = {}
    for weight in (0.0, 50.0):
        spy = TeacherSpy(LwFSSLOptions(lambda_=weight))
        strategy = make_template(tiny_stream, [spy], epochs=3)
        for experience in tiny_stream.benchmark.train_stream[:2]:
            strategy.train(experience, eval_streams=[])
        torch.manual_seed(0)
        views = strategy.augment(tiny_stream.experiences[0].test.images)
        strategy.model.eval()
        with torch.no_grad():
            student = strategy.model(views).projections.flatten(0, 1)
            teacher = spy.teacher(views).projections.flatten(0, 1)  # eval-mode BN (default)
        drift[weight] = RelationalDistillationLoss(0.1)(student, teacher).item()
    assert drift[50.0] < 0.8 * drift[0.0], drift


class PairSpy(LwFSSLPlugin):
    """Keeps the embeddings of the first distillation step."""

    def before_backward(self, strategy, *args, **kwargs):
        super().before_backward(strategy, *args, **kwargs)
        if self.teacher.active and not hasattr(self, "pair"):
            self.pair = (
                strategy.mb_output.projections.detach(),
                self.teacher(strategy.mb_x).projections,
                strategy.loss_terms["distill"].item(),
            )


def test_contrastive_mode_distils_per_view(tiny_stream, make_template):
    """The plugin hands [B, V, D] to the per-view loss: its term is the mean of the
    per-view cross-entropies, not NT-Xent over the flattened views."""
    import torch.nn.functional as F

    spy = PairSpy(LwFSSLOptions(mode="contrastive", temperature=0.2))
    strategy = make_template(tiny_stream, [spy])
    for experience in tiny_stream.benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    student, teacher, term = spy.pair
    batch = student.shape[0]
    s, t = F.normalize(student, dim=-1), F.normalize(teacher, dim=-1)
    per_view = [F.cross_entropy(s[:, v] @ t[:, v].T / 0.2, torch.arange(batch)) for v in range(2)]
    assert term == pytest.approx(((per_view[0] + per_view[1]) / 2).item(), rel=1e-5)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(lambda_=-1), "lwf-ssl.lambda"),
        (dict(teacher_bn="train"), "lwf-ssl.teacher-bn"),
    ],
)
def test_bad_options_are_rejected(options, match):
    with pytest.raises(ValueError, match=match):  # the options' own checks, or the plugin's
        LwFSSLPlugin(LwFSSLOptions(**options))
