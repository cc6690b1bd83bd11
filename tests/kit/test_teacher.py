"""The shared teacher lifecycle (cl_ssl.kit.teacher) as LwF-SSL and CaSSLe use it."""

from types import SimpleNamespace

import pytest
import torch
from cl_ssl.strategies.cassle import CaSSLeOptions, CaSSLePlugin
from cl_ssl.strategies.lwf_ssl import LwFSSLOptions, LwFSSLPlugin
from torch import nn

from cl_ssl.kit.teacher import Teacher


def bn_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model.train()
    for _ in range(3):  # running statistics that differ from any one batch's
        model(torch.randn(16, 4) * 3 + 1)
    return model


def fake_strategy(model, trained_experiences):
    clock = SimpleNamespace(train_exp_counter=trained_experiences)
    return SimpleNamespace(model=model, clock=clock)


def test_no_teacher_on_the_first_experience_and_a_frozen_copy_after():
    model = bn_model()
    teacher = Teacher()
    teacher.refresh(fake_strategy(model, 0))
    assert not teacher.active
    with pytest.raises(RuntimeError, match="second experience"):
        teacher(torch.randn(4, 4))
    teacher.refresh(fake_strategy(model, 1))
    assert teacher.active and teacher.model is not model
    assert not any(p.requires_grad for p in teacher.model.parameters())
    with torch.no_grad():
        model[0].weight.add_(1.0)  # the student moves on; the snapshot does not
    assert not torch.equal(teacher.model[0].weight, model[0].weight)
    out = teacher(torch.randn(4, 4))
    assert not out.requires_grad


def test_batch_mode_computes_the_students_training_function_and_writes_no_buffer():
    model = bn_model()
    x = torch.randn(10, 4) * 2 - 1
    for mode in ("eval", "batch"):
        teacher = Teacher(bn_mode=mode)
        teacher.refresh(fake_strategy(model, 1))
        buffers = {k: v.clone() for k, v in teacher.model.state_dict().items()}
        model.eval()
        student_eval = model(x)
        model.train()
        student_train = model(x)  # (updates the student's running stats, not the copy's)
        out = teacher(x)
        expected, other = (
            (student_train, student_eval) if mode == "batch" else (student_eval, student_train)
        )
        assert torch.allclose(out, expected, atol=1e-6)
        assert (out - other).abs().max() > 1e-2
        for key, value in teacher.model.state_dict().items():
            assert torch.equal(value, buffers[key]), (mode, key)
        teacher.model.train()  # even if someone flips the copy's mode, calls follow bn_mode
        assert torch.allclose(teacher(x), expected, atol=1e-6)


def test_bad_bn_mode_is_rejected():
    with pytest.raises(ValueError, match="bn_mode"):
        Teacher(bn_mode="train")


class FirstStepSpy(LwFSSLPlugin):
    """Records the distillation terms and the teacher's state through an experience."""

    def __init__(self, options):
        super().__init__(options)
        self.terms: list[float] = []

    def before_training_exp(self, strategy, *args, **kwargs):
        super().before_training_exp(strategy, *args, **kwargs)
        if self.teacher.active:
            self.state_at_start = {k: v.clone() for k, v in self.teacher.model.state_dict().items()}

    def after_training_iteration(self, strategy, *args, **kwargs):
        if "distill" in strategy.loss_terms:
            self.terms.append(strategy.loss_terms["distill"].item())


@pytest.mark.parametrize("bn_mode", ["batch", "eval"])
def test_first_step_distils_nothing_only_with_batch_statistics(bn_mode, tiny_stream, make_template):
    """On experience 1's first step the student's weights are the teacher's. With batch
    statistics both compute the same function, so the relational term is 0; with running
    statistics the teacher normalises differently and the term is positive."""
    spy = FirstStepSpy(LwFSSLOptions(teacher_bn=bn_mode))
    strategy = make_template(tiny_stream, [spy])
    for experience in tiny_stream.benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    first, later = spy.terms[0], spy.terms[1:]
    if bn_mode == "batch":
        assert first < 1e-6
    else:
        assert first > 1e-2
    assert min(later) > 1e-4  # once the student moves, there is something to distil


@pytest.mark.parametrize("bn_mode", ["batch", "eval"])
@pytest.mark.parametrize("plugin", ["lwf-ssl", "cassle"])
def test_teacher_parameters_and_buffers_are_bit_identical_through_an_experience(
    plugin, bn_mode, tiny_stream, make_template
):
    class Spy(LwFSSLPlugin if plugin == "lwf-ssl" else CaSSLePlugin):
        def before_training_exp(self, strategy, *args, **kwargs):
            super().before_training_exp(strategy, *args, **kwargs)
            if self.teacher.active:
                self.start = {k: v.clone() for k, v in self.teacher.model.state_dict().items()}
                self.model_at_start = {k: v.clone() for k, v in strategy.model.state_dict().items()}

    options = (LwFSSLOptions if plugin == "lwf-ssl" else CaSSLeOptions)(teacher_bn=bn_mode)
    spy = Spy(options)
    strategy = make_template(tiny_stream, [spy])
    for experience in tiny_stream.benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    end = spy.teacher.model.state_dict()
    assert set(end) == set(spy.start) == set(spy.model_at_start)
    for key, value in end.items():
        assert torch.equal(value, spy.start[key]), key  # num_batches_tracked included
        assert torch.equal(value, spy.model_at_start[key]), key  # a copy of the model then
    now = strategy.model.state_dict()
    assert any(not torch.equal(now[k], v) for k, v in spy.model_at_start.items())


@pytest.mark.parametrize("channels_last", [False, True])
def test_eval_teacher_runs_with_batch_norms_folded_and_computes_the_snapshots_function(
    channels_last,
):
    from cl_ssl.config import TrainConfig
    from cl_ssl.strategy_run import build_model

    torch.manual_seed(0)
    model, _ = build_model(TrainConfig(), 16)
    model.train()
    for _ in range(3):  # running statistics of their own
        model(torch.rand(8, 2, 3, 16, 16) * 2)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    x = torch.rand(6, 2, 3, 16, 16)
    teacher = Teacher("eval")
    teacher.refresh(fake_strategy(model, 1))
    runner = teacher._runner
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in runner.modules())
    conv = next(p for p in runner.parameters() if p.ndim == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) == channels_last
    model.eval()
    expected = model(x)
    out = teacher(x)
    for got, want in zip(out, expected, strict=True):
        if want is not None:
            assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    # batch statistics are a function of the batch: nothing to fold
    batch_teacher = Teacher("batch")
    batch_teacher.refresh(fake_strategy(model, 1))
    assert batch_teacher._runner is batch_teacher.model


def test_an_untraceable_part_stays_unfolded_and_the_rest_is_folded():
    from cl_ssl.kit.teacher import fold_batch_norms

    class Branchy(nn.Module):  # data-dependent control flow: fx cannot trace it
        def __init__(self):
            super().__init__()
            self.linear, self.bn = nn.Linear(4, 4), nn.BatchNorm1d(4)

        def forward(self, x):
            return self.bn(self.linear(x)) if x.sum() > -1e9 else x

    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.branchy = Branchy()
            self.plain = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))

        def forward(self, x):
            return self.plain(self.branchy(x)) if x.ndim == 2 else x

    model = Both()
    model.train()
    model(torch.randn(16, 4) * 3)
    model.eval()
    folded = fold_batch_norms(model)
    assert isinstance(folded.branchy.bn, nn.BatchNorm1d)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in folded.plain.modules())
    x = torch.randn(5, 4)
    assert torch.allclose(folded(x), model(x), atol=1e-6)
    assert not any(p.requires_grad for p in folded.parameters())
