"""Every registered method, through the same checks: a new method needs no new test here."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
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


def small_model(name: str, seed: int = 0, options=None):
    torch.manual_seed(seed)
    method = build_method(name, options or small_options(name))
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


# -- CaSSLe's and PNR's terms, from the reference code's formulas ----------------------
# github.com/DonkeyShot21/cassle (cassle/distillers/*.py) and github.com/csm9493/PNR
# (cassle/distillers/*_pnr.py, bash_files/continual/cifar/*.sh), per view and averaged over
# the views, in each method's loss units: BYOL's SSL loss is the reference's / 4 (minus 1),
# Barlow Twins' the reference's / 0.1 (its scale_loss); the others are the reference's.


def _cos(p, t):  # [B, V, D] -> mean cosine of every row
    return sum(
        float(p[i, v] @ t[i, v]) / float(p[i, v].norm() * t[i, v].norm())
        for i in range(p.shape[0])
        for v in range(p.shape[1])
    ) / (p.shape[0] * p.shape[1])


def _mse(p, t):
    return float(((p - t) ** 2).sum()) / p.numel()


def _barlow(p, t, lamb=5e-3):  # barlow_loss_func / scale_loss, per view, averaged
    def standardise(z):
        return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)

    total = 0.0
    for v in range(p.shape[1]):
        c = standardise(p[:, v]).T @ standardise(t[:, v]) / p.shape[0]
        off = c - torch.diag(torch.diag(c))
        total += float(((1 - torch.diag(c)) ** 2).sum() + lamb * (off**2).sum())
    return total / p.shape[1]


def _contrastive(p, t, temperature):  # simclr_distill_loss_func, symmetrised
    p = F.normalize(p.flatten(0, 1), dim=1)
    t = F.normalize(t.flatten(0, 1), dim=1)
    n = p.shape[0]
    total = 0.0
    for a, b in ((p, t), (t, p)):
        for i in range(n):
            logits = [float(a[i] @ b[j]) / temperature for j in range(n)]
            total += math.log(sum(math.exp(x) for x in logits)) - logits[i]
    return total / (2 * n)


REFERENCE_DISTILLATION = {
    "simclr": _contrastive,  # contrastive.py, distill_temperature
    "barlow-twins": lambda p, t, _: _barlow(p, t),  # decorrelative.py
    "byol": lambda p, t, _: (2 - 2 * _cos(p, t)) / 4,  # predictive.py, byol_loss_func
    "simsiam": lambda p, t, _: 2 - 2 * _cos(p, t),  # predictive.py
    "vicreg": lambda p, t, _: 25 * _mse(p, t),  # predictive_mse.py, distill_lamb 25
}
REFERENCE_PNR_NEGATIVE = {  # negative_lamb * D(q^v, z^{-,v'})
    "barlow-twins": lambda p, n: 1.0 * -_cos(p, n) / 0.1,  # barlow_pnr.py, simsiam_loss_func
    "byol": lambda p, n: 0.5 * (2 - 2 * _cos(p, n)) / 4,  # byol_pnr.py
    "simsiam": lambda p, n: 0.5 * (2 - 2 * _cos(p, n)),  # no SimSiam PNR: BYOL's
    "vicreg": lambda p, n: 23 * _mse(p, n),  # vicreg_pnr.py
}


def reference_parts(name, method):
    """(name, columns, weight) of a method, or of each component of a mixture on its head's
    columns of the concatenated projections."""
    if "+" not in name:
        return [(name, slice(None), 1.0)]
    starts = [sum(method.sizes[:i]) for i in range(len(method.sizes))]
    return [
        (part, slice(start, start + size), weight)
        for part, start, size, weight in zip(
            name.split("+"), starts, method.sizes, method.weights, strict=True
        )
    ]


@pytest.mark.parametrize("name", MIXED)
def test_distillation_loss_is_the_references_and_never_reaches_the_teacher(name):
    """A mixture must mix its components' own terms with its weights: SimCLR's slice
    falling back to NT-Xent (or ignoring the distillation temperature, or the weights)
    fails here."""
    options = small_options(name)
    if "+" in name:  # a weight other than 1 on the second component
        options[name.split("+")[1]]["weight"] = "0.5"
    model, method = small_model(name, options=options)
    assert "+" not in name or method.weights == (1.0, 0.5)
    width = model(torch.randn(2, 2, 3, 8, 8)).projections.shape[-1]
    torch.manual_seed(1)
    predicted = torch.randn(8, 2, width, requires_grad=True)
    teacher = torch.randn(8, 2, width, requires_grad=True)
    p, t = predicted.detach(), teacher.detach()
    for temperature in (0.2, 0.5):
        term = method.distillation_loss(predicted, teacher, temperature)
        expected = sum(
            weight * REFERENCE_DISTILLATION[part](p[..., s], t[..., s], temperature)
            for part, s, weight in reference_parts(name, method)
        )
        assert term.item() == pytest.approx(expected, rel=1e-5)
    term.backward()
    assert term.ndim == 0 and torch.isfinite(term)
    assert predicted.grad is not None and teacher.grad is None


@pytest.mark.parametrize("name", [n for n in METHODS if n != "simclr"])
def test_pnr_negative_is_the_references_and_never_reaches_the_teacher(name):
    method = build_method(name)
    torch.manual_seed(2)
    predicted = torch.randn(8, 2, 6, requires_grad=True)
    negatives = torch.randn(8, 2, 6, requires_grad=True)
    term = method.pnr_negative(predicted, negatives)
    expected = REFERENCE_PNR_NEGATIVE[name](predicted.detach(), negatives.detach())
    assert term.item() == pytest.approx(expected, rel=1e-5)
    term.backward()
    assert predicted.grad is not None and negatives.grad is None
