import pandas as pd
import pytest
import torch

from cl_ssl.bench import run_bench
from strategies.cassle import CaSSLeOptions, CaSSLePlugin


class PredictorSpy(CaSSLePlugin):
    def __init__(self, options=None):
        super().__init__(options)
        self.terms: list[float] = []

    def before_training_exp(self, strategy, *args, **kwargs):
        super().before_training_exp(strategy, *args, **kwargs)
        if self.teacher is not None:
            self.teacher_start = [p.clone() for p in self.teacher.parameters()]
            self.predictor_start = [p.detach().clone() for p in self.predictor.parameters()]

    def after_training_iteration(self, strategy, *args, **kwargs):
        if "distill" in strategy.loss_terms:
            self.terms.append(strategy.loss_terms["distill"].item())


def test_predictor_learns_while_the_teacher_stays_frozen(tiny_stream, make_template):
    spy = PredictorSpy()
    strategy = make_template(tiny_stream, [spy], epochs=2)
    train = tiny_stream.benchmark.train_stream
    strategy.train(train[0], eval_streams=[])
    assert spy.teacher is None and spy.terms == []
    strategy.train(train[1], eval_streams=[])
    assert spy.terms and all(t > 0 for t in spy.terms)
    for now, start in zip(spy.teacher.parameters(), spy.teacher_start, strict=True):
        assert torch.equal(now, start) and not now.requires_grad
    changed = [
        not torch.equal(p, s)
        for p, s in zip(spy.predictor.parameters(), spy.predictor_start, strict=True)
    ]
    assert all(changed)
    # The predictor is not part of the model users keep.
    assert not any(p is q for p in strategy.model.parameters() for q in spy.predictor.parameters())


def test_first_experience_equals_naive_exactly(tiny_bench):
    naive, cassle = run_bench(tiny_bench("naive,cassle")).strategies
    first = naive.metrics[naive.metrics.train_exp <= 0].drop(columns="strategy")
    second = cassle.metrics[cassle.metrics.train_exp <= 0].drop(columns="strategy")
    pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))


def test_negative_weight_is_rejected():
    with pytest.raises(ValueError, match="cassle.weight"):
        CaSSLePlugin(CaSSLeOptions(weight=-1))
