import dataclasses

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import loss_metrics
from avalanche.training.plugins import EvaluationPlugin

from cl_ssl.augment import AugmentConfig, make_augment
from cl_ssl.bench import build_model, make_optimizer
from cl_ssl.config import TrainConfig
from cl_ssl.registry import streams
from cl_ssl.streams import StreamOptions
from cl_ssl.template import SSLTemplate


@pytest.fixture(scope="module")
def stream():
    return streams.get("digits-periods")(StreamOptions(image_size=8, max_images=120))


def make_strategy(stream, plugins=(), epochs=1, seed=0):
    torch.manual_seed(seed)
    train = TrainConfig(batch_size=32, lr=2e-3)
    model, method = build_model(train, 8)
    config = dataclasses.replace(AugmentConfig(input_size=8), **stream.augment_overrides)
    return SSLTemplate(
        model=model,
        optimizer=make_optimizer(train, model),
        method=method,
        augment=make_augment("batched", config),
        train_mb_size=32,
        train_epochs=epochs,
        eval_mb_size=64,
        plugins=list(plugins),
        evaluator=EvaluationPlugin(loss_metrics(experience=True), loggers=[]),
    )


def eval_loss(strategy, experience) -> float:
    metrics = strategy.eval([experience])
    return next(v for k, v in metrics.items() if k.startswith("Loss_Exp"))


def test_ssl_loss_on_the_training_experience_decreases(stream):
    strategy = make_strategy(stream, epochs=8)
    train_exp = stream.benchmark.train_stream[0]
    before = eval_loss(strategy, train_exp)
    strategy.train(train_exp, eval_streams=[])
    after = eval_loss(strategy, train_exp)
    assert after < before - 0.2, (before, after)


def test_labels_never_influence_training(stream):
    """Training on the same images with every label replaced gives identical weights."""
    first = make_strategy(stream)
    first.train(stream.benchmark.train_stream[0], eval_streams=[])
    relabeled = stream.experiences[0].train
    relabeled.labels = torch.randint(0, 10, relabeled.labels.shape)
    second = make_strategy(stream)
    second.train(stream.benchmark.train_stream[0], eval_streams=[])
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_evaluation_is_repeatable_and_leaves_training_rng_alone(stream):
    strategy = make_strategy(stream)
    exp = stream.benchmark.test_stream[1]
    torch.manual_seed(123)
    first = eval_loss(strategy, exp)
    after_eval = torch.rand(1)
    torch.manual_seed(123)
    second = eval_loss(strategy, exp)
    assert first == second
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), after_eval)


class AddConstant(SupervisedPlugin):
    def __init__(self, value):
        super().__init__()
        self.value = value
        self.seen = []

    def before_backward(self, strategy, **kwargs):
        strategy.add_loss_term("const", torch.tensor(self.value))
        self.seen.append((strategy.loss.item(), dict(strategy.loss_terms)))


def test_plugins_add_named_loss_terms(stream):
    plugin = AddConstant(5.0)
    make_strategy(stream, [plugin]).train(stream.benchmark.train_stream[0], eval_streams=[])
    total, terms = plugin.seen[0]
    assert set(terms) == {"ssl", "const"}
    assert total == pytest.approx(terms["ssl"].item() + 5.0, rel=1e-6)


def test_non_finite_loss_stops_with_a_message(stream):
    plugin = AddConstant(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite loss .*const=nan"):
        make_strategy(stream, [plugin]).train(stream.benchmark.train_stream[0], eval_streams=[])
