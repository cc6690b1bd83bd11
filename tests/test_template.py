import pytest
import torch
from avalanche.core import SupervisedPlugin


def eval_loss(strategy, experience) -> float:
    metrics = strategy.eval([experience])
    return next(v for k, v in metrics.items() if k.startswith("Loss_Exp"))


def test_ssl_loss_on_the_training_experience_decreases(tiny_stream, make_template):
    strategy = make_template(tiny_stream, epochs=8)
    train_exp = tiny_stream.benchmark.train_stream[0]
    before = eval_loss(strategy, train_exp)
    strategy.train(train_exp, eval_streams=[])
    after = eval_loss(strategy, train_exp)
    assert after < before - 0.2, (before, after)


def test_labels_never_influence_training(tiny_stream, make_template):
    """Training on the same images with every label replaced gives identical weights."""
    first = make_template(tiny_stream)
    first.train(tiny_stream.benchmark.train_stream[0], eval_streams=[])
    relabeled = tiny_stream.experiences[0].train
    original = relabeled.labels
    relabeled.labels = torch.randint(0, 10, original.shape)
    try:
        second = make_template(tiny_stream)
        second.train(tiny_stream.benchmark.train_stream[0], eval_streams=[])
    finally:
        relabeled.labels = original
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_evaluation_is_repeatable_and_leaves_training_rng_alone(tiny_stream, make_template):
    strategy = make_template(tiny_stream)
    exp = tiny_stream.benchmark.test_stream[1]
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


def test_plugins_add_named_loss_terms(tiny_stream, make_template):
    plugin = AddConstant(5.0)
    make_template(tiny_stream, [plugin]).train(
        tiny_stream.benchmark.train_stream[0], eval_streams=[]
    )
    total, terms = plugin.seen[0]
    assert set(terms) == {"ssl", "const"}
    assert total == pytest.approx(terms["ssl"].item() + 5.0, rel=1e-6)


def test_non_finite_loss_stops_with_a_message(tiny_stream, make_template):
    plugin = AddConstant(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite loss .*const=nan"):
        make_template(tiny_stream, [plugin]).train(
            tiny_stream.benchmark.train_stream[0], eval_streams=[]
        )


@pytest.mark.parametrize("method", ["barlow-twins", "vicreg"])
def test_a_last_batch_of_one_image_is_never_formed(method):
    import dataclasses
    import math

    from avalanche.evaluation.metrics import loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    from cl_ssl.augment import AugmentConfig, make_augment
    from cl_ssl.config import TrainConfig
    from cl_ssl.registry import streams
    from cl_ssl.strategy_run import build_model, make_optimizer
    from cl_ssl.streams import StreamOptions
    from cl_ssl.template import SSLTemplate

    # 33 training images = 2 * 16 + 1, 4 test images = 3 + 1.
    stream = streams.get("digits-periods")(StreamOptions(image_size=8, max_images=37))
    train_exp, test_exp = stream.benchmark.train_stream[0], stream.benchmark.test_stream[0]
    assert (len(train_exp.dataset), len(test_exp.dataset)) == (33, 4)
    torch.manual_seed(0)
    train = TrainConfig(batch_size=16, lr=2e-3, method=method)
    model, ssl = build_model(train, 8)
    config = dataclasses.replace(AugmentConfig(input_size=8), **stream.augment_overrides)
    strategy = SSLTemplate(
        model=model,
        optimizer=make_optimizer(train, model),
        method=ssl,
        augment=make_augment("batched", config),
        train_mb_size=16,
        train_epochs=2,
        eval_mb_size=3,
        evaluator=EvaluationPlugin(loss_metrics(experience=True), loggers=[]),
        train_seed=0,
    )
    strategy.train(train_exp, eval_streams=[])
    # ceil(33 / 16) - 1 = 2 steps per epoch: the lone 33rd image's batch is dropped.
    assert strategy.steps_trained == 4 and strategy.images_trained == 4 * 16
    assert math.isfinite(eval_loss(strategy, test_exp))  # on the first 3 test images


def test_only_a_remainder_of_one_is_dropped():
    from cl_ssl.template import lone_last_batch

    assert [lone_last_batch(n, 16) for n in (16, 17, 18, 31, 33)] == [
        False, True, False, False, True
    ]  # fmt: skip
    assert not lone_last_batch(5, 1)  # batches of one: nothing to drop to
