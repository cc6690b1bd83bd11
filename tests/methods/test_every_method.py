"""Every registered method, through the same checks: a new method needs no new test here."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from avalanche.evaluation.metrics import loss_metrics
from avalanche.training.plugins import EvaluationPlugin

from cl_ssl.augment import make_augment
from cl_ssl.bench import build_model, make_optimizer, run_bench
from cl_ssl.config import EvalConfig, TrainConfig
from cl_ssl.methods import build_method
from cl_ssl.options import field_key
from cl_ssl.registry import backbones, methods
from cl_ssl.template import SSLTemplate

METHODS = methods.names()
# Mixtures (cl_ssl.methods.mixture) take every check that builds a model.
MIXED = [*METHODS, "simclr+barlow-twins", "vicreg+simsiam"]

# Narrow heads keep the CPU tests fast; the options are the methods' own.
SMALL_HEADS = {"hidden_dim": "64", "output_dim": "32", "pred_hidden_dim": "32"}


def small_options(name: str) -> dict[str, dict[str, str]]:
    options = {}
    for part in name.split("+"):
        fields = {f.name for f in dataclasses.fields(methods.get(part).Options)}
        options[part] = {k: v for k, v in SMALL_HEADS.items() if k in fields}
    return options


def make_template(stream, name: str, epochs: int = 1) -> SSLTemplate:
    torch.manual_seed(0)
    train = TrainConfig(batch_size=32, lr=2e-3, method=name, method_options=small_options(name))
    model, method = build_model(train, 8)
    config = dataclasses.replace(method.augment_config(8), **stream.augment_overrides)
    return SSLTemplate(
        model=model,
        optimizer=make_optimizer(train, model),
        method=method,
        augment=make_augment("batched", config),
        train_mb_size=32,
        train_epochs=epochs,
        eval_mb_size=64,
        evaluator=EvaluationPlugin(loss_metrics(experience=True), loggers=[]),
    )


def eval_loss(strategy, experience) -> float:
    metrics = strategy.eval([experience])
    return next(v for k, v in metrics.items() if k.startswith("Loss_Exp"))


def small_model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    method = build_method(name, small_options(name))
    backbone = backbones.get("small_resnet")(8)
    model = methods_model(method, backbone)
    method.setup(model)
    return model, method


def methods_model(method, backbone):
    from cl_ssl.models.ssl_model import SSLModel

    return SSLModel(backbone, method.make_head(backbone.feature_dim), method.make_predictor())


@pytest.mark.parametrize("name", MIXED)
def test_loss_decreases_through_the_template(tiny_stream, name):
    """Eight epochs on one experience: the evaluation loss (fixed views) goes down."""
    strategy = make_template(tiny_stream, name, epochs=8)
    experience = tiny_stream.benchmark.train_stream[0]
    before = eval_loss(strategy, experience)
    strategy.train(experience, eval_streams=[])
    after = eval_loss(strategy, experience)
    assert math.isfinite(before) and math.isfinite(after)
    assert after < before - 0.05 * max(abs(before), 1.0), (before, after)


@pytest.mark.parametrize("name", MIXED)
def test_runs_end_to_end_through_the_bench(tiny_bench, name):
    config = tiny_bench("naive", method=name, method_options=small_options(name))
    # The SSL loss and a kNN score are enough here; the probe and k-means are method-blind.
    light = EvalConfig(protocols=("all",), knn_k=(5,), linear_probe=False, kmeans=False)
    result = run_bench(dataclasses.replace(config, evaluation=light))
    assert result.ok, result.failures
    losses = result.strategies[0].loss_matrix.to_numpy(dtype=float)
    assert losses.size > 0 and np.isfinite(losses).all()


@pytest.mark.parametrize("name", METHODS)
def test_builds_with_one_option_override(name):
    fields = dataclasses.fields(methods.get(name).Options)
    numeric = [f for f in fields if type(f.default) in (int, float)]
    if not numeric:
        pytest.skip(f"{name} has no numeric option")
    field = numeric[0]
    value = field.default + 1 if isinstance(field.default, int) else field.default / 2
    method = build_method(name, {name: {field_key(field.name): str(value)}})
    assert getattr(method.options, field.name) == value
    others = {f.name: getattr(method.options, f.name) for f in fields if f is not field}
    assert others == {f.name: f.default for f in fields if f is not field}
    with pytest.raises(ValueError, match="unknown option"):
        build_method(name, {name: {"no-such-option": "1"}})


@pytest.mark.parametrize("name", MIXED)
def test_state_round_trips_through_a_fresh_method(name):
    model, method = small_model(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    views = torch.randn(8, 2, 3, 8, 8)
    for step in (1, 2):  # the state (BYOL's target) moves away from the copy of the model
        optimizer.zero_grad()
        method(model(views), views).backward()
        optimizer.step()
        method.after_step(model, step, 10)
    state = method.state_dict()

    fresh_model, fresh = small_model(name, seed=1)
    fresh.load_state_dict(state)
    assert state.keys() == fresh.state_dict().keys()
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert torch.equal(fresh(model(views), views), method(model(views), views))


@pytest.mark.parametrize("name", MIXED)
def test_distillation_loss_is_finite_and_never_reaches_the_teacher(name):
    model, method = small_model(name)
    width = model(torch.randn(2, 2, 3, 8, 8)).projections.shape[-1]
    predicted = torch.randn(8, 2, width, requires_grad=True)
    teacher = torch.randn(8, 2, width, requires_grad=True)
    term = method.distillation_loss(predicted, teacher)
    term.backward()
    assert term.ndim == 0 and torch.isfinite(term)
    assert predicted.grad is not None and teacher.grad is None
