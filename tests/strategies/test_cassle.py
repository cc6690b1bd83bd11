import gc
import warnings

import pandas as pd
import pytest
import torch
from cl_ssl.strategies.cassle import CaSSLeOptions, CaSSLePlugin

from cl_ssl.bench import run_bench
from cl_ssl.kit.losses.cassle import predict_views
from cl_ssl.methods.distillation import contrastive_distillation


class PredictorSpy(CaSSLePlugin):
    """Records the terms, the first distillation step's tensors and the student's buffers."""

    def __init__(self, options=None):
        super().__init__(options)
        self.terms: list[float] = []
        self.ssl_terms: list[float] = []
        self.first_step: dict | None = None

    def before_training_exp(self, strategy, *args, **kwargs):
        self.buffers_before = {k: b.clone() for k, b in strategy.model.named_buffers()}
        super().before_training_exp(strategy, *args, **kwargs)
        self.buffers_after = {k: b.clone() for k, b in strategy.model.named_buffers()}
        if self.teacher.active:
            self.teacher_start = [p.clone() for p in self.teacher.model.parameters()]

    def before_backward(self, strategy, *args, **kwargs):
        rng = torch.get_rng_state()
        had_predictor = self.predictor is not None
        super().before_backward(strategy, *args, **kwargs)
        if self.teacher.active and not had_predictor:
            self.first_step = {
                "rng_unchanged": torch.equal(rng, torch.get_rng_state()),
                "student": strategy.mb_output.projections.detach().clone(),
                "teacher": self.teacher(strategy.mb_x).projections,
                "predictor_start": [p.detach().clone() for p in self.predictor.parameters()],
            }

    def after_backward(self, strategy, *args, **kwargs):
        if self.first_step is not None and "term" not in self.first_step:
            with torch.no_grad():  # the predictor has not been stepped yet
                predicted = predict_views(self.predictor, self.first_step["student"])
            self.first_step["predicted"] = predicted
            self.first_step["term"] = strategy.loss_terms["distill"].item()

    def after_training_iteration(self, strategy, *args, **kwargs):
        if "distill" in strategy.loss_terms:
            self.terms.append(strategy.loss_terms["distill"].item())
            self.ssl_terms.append(strategy.loss_terms["ssl"].item())


def train(stream, make_template, spy, experiences=2, epochs=1):
    strategy = make_template(stream, [spy], epochs=epochs)
    strategy.train_seed = 0
    for experience in stream.benchmark.train_stream[:experiences]:
        strategy.train(experience, eval_streams=[])
    return strategy


def test_predictor_learns_while_the_teacher_stays_frozen(tiny_stream, make_template):
    spy = PredictorSpy()
    strategy = make_template(tiny_stream, [spy], epochs=2)
    train_stream = tiny_stream.benchmark.train_stream
    strategy.train(train_stream[0], eval_streams=[])
    assert not spy.teacher.active and spy.terms == [] and spy.predictor is None
    strategy.train(train_stream[1], eval_streams=[])
    assert spy.terms and all(t > 0 for t in spy.terms)
    for now, start in zip(spy.teacher.model.parameters(), spy.teacher_start, strict=True):
        assert torch.equal(now, start) and not now.requires_grad
    changed = [
        not torch.equal(p, s)
        for p, s in zip(spy.predictor.parameters(), spy.first_step["predictor_start"], strict=True)
    ]
    assert all(changed)
    # The predictor is not part of the model users keep.
    assert not any(p is q for p in strategy.model.parameters() for q in spy.predictor.parameters())


def test_predictor_is_trained_by_the_main_optimizer_once(tiny_stream, make_template):
    spy = PredictorSpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strategy = train(tiny_stream, make_template, spy, experiences=3)
    optimizer = strategy.optimizer
    ids = [id(p) for group in optimizer.param_groups for p in group["params"]]
    predictor = list(spy.predictor.parameters())
    # In exactly once after two more experiences' update_optimizer calls ...
    assert all(ids.count(id(p)) == 1 for p in predictor)
    assert len(ids) == len(set(ids)) == len(list(strategy.model.parameters())) + len(predictor)
    # ... in groups of its own with the model's settings, and stepped (it has optimizer state).
    mine = [
        g for g in optimizer.param_groups if any(p is q for q in predictor for p in g["params"])
    ]
    assert all(g is not optimizer.param_groups[0] for g in mine)
    assert {id(p) for g in mine for p in g["params"]} == {id(p) for p in predictor}
    (group,) = [g for g in mine if any(p is predictor[0] for p in g["params"])]
    for key in ("lr", "weight_decay", "betas", "eps"):
        assert group[key] == optimizer.param_groups[0][key], key
    assert all(optimizer.state[p] and optimizer.state[p]["step"] > 0 for p in predictor)
    # No other optimizer anywhere holds it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance() on some of torch's deprecated objects
        optimizers = [o for o in gc.get_objects() if isinstance(o, torch.optim.Optimizer)]
    holders = [
        o for o in optimizers if any(p is predictor[0] for g in o.param_groups for p in g["params"])
    ]
    assert holders == [optimizer]
    assert not [w for w in caught if "param" in str(w.message).lower()], [
        str(w.message) for w in caught
    ]


def test_setting_up_touches_neither_the_student_nor_the_random_stream(tiny_stream, make_template):
    spy = PredictorSpy()
    train(tiny_stream, make_template, spy)
    # Experience 1's before_training_exp ran no data through the student's BatchNorms.
    assert spy.buffers_before.keys() == spy.buffers_after.keys()
    assert any("running_mean" in k for k in spy.buffers_before)
    for key, value in spy.buffers_before.items():
        assert torch.equal(value, spy.buffers_after[key]), key
    # The predictor was created on the first distillation step from its own seed.
    assert spy.first_step["rng_unchanged"]
    assert spy.predictor[0].in_features == spy.first_step["student"].shape[-1]


def test_the_term_is_the_contrastive_distillation_at_its_own_temperature(
    tiny_stream, make_template
):
    first = {}
    for temperature in (0.2, 0.5):
        spy = PredictorSpy(CaSSLeOptions(temperature=temperature))
        strategy = train(tiny_stream, make_template, spy)
        step = spy.first_step
        expected = contrastive_distillation(step["predicted"], step["teacher"], temperature)
        assert step["term"] == pytest.approx(expected.item(), rel=1e-5)
        first[temperature] = (spy.terms[0], spy.ssl_terms[0])
        assert strategy.method.ntxent.temperature == 0.5  # SimCLR's own is untouched
    # Same weights, views and predictor on that step: only the temperature differs.
    assert first[0.2][1] == first[0.5][1]
    assert abs(first[0.2][0] - first[0.5][0]) > 1e-3


def test_default_teacher_uses_batch_statistics_like_the_paper_code(tiny_stream, make_template):
    """At experience 1's first step the weights are the teacher's: with batch statistics
    (CaSSLe's Lightning train mode) the teacher reproduces the student's projections."""
    spy = PredictorSpy()
    train(tiny_stream, make_template, spy)
    assert torch.allclose(spy.first_step["teacher"], spy.first_step["student"], atol=1e-5)
    eval_spy = PredictorSpy(CaSSLeOptions(teacher_bn="eval"))
    train(tiny_stream, make_template, eval_spy)
    difference = eval_spy.first_step["teacher"] - eval_spy.first_step["student"]
    assert difference.abs().max() > 1e-2


def test_first_experience_equals_naive_exactly(tiny_bench):
    naive, cassle = run_bench(tiny_bench("naive,cassle")).strategies
    first = naive.metrics[naive.metrics.train_exp <= 0].drop(columns="strategy")
    second = cassle.metrics[cassle.metrics.train_exp <= 0].drop(columns="strategy")
    pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(weight=-1), "cassle.weight"),
        (dict(temperature=0), "cassle.temperature"),
        (dict(hidden_dim=0), "cassle.hidden-dim"),
        (dict(teacher_bn="train"), "cassle.teacher-bn"),
    ],
)
def test_bad_options_are_rejected(options, match):
    with pytest.raises(ValueError, match=match):  # the options' own checks, or the plugin's
        CaSSLePlugin(CaSSLeOptions(**options))
