import dataclasses
import io
import math
import warnings

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import loss_metrics
from avalanche.training.plugins import EvaluationPlugin
from cl_ssl.strategies.pnr import PNROptions, PNRPlugin
from torch import nn

from cl_ssl.augment import AugmentConfig, make_augment
from cl_ssl.bench import build_model, make_optimizer, run_bench
from cl_ssl.config import TrainConfig
from cl_ssl.kit.losses.cassle import predict_views
from cl_ssl.kit.losses.pnr import pnr_contrastive_regularization, pnr_ssl_excess
from cl_ssl.methods import build_method
from cl_ssl.methods.base import SSLMethod
from cl_ssl.methods.byol import BYOL, BYOLOptions
from cl_ssl.methods.simclr import SimCLR, SimCLROptions
from cl_ssl.methods.vicreg import VICReg, VICRegOptions
from cl_ssl.models.ssl_model import SSLModel
from cl_ssl.registry import backbones, methods
from cl_ssl.state import capture, restore
from cl_ssl.template import SSLTemplate


class SquaredErrorMethod(SSLMethod):
    """A non-contrastive toy: negative cosine between views, squared-error distillation (so
    its distillation loss differs from the negative cosine, as VICReg's MSE does)."""

    def make_head(self, feature_dim):
        return nn.Sequential(nn.Linear(feature_dim, 16), nn.BatchNorm1d(16))

    def loss(self, projections):
        return -F.cosine_similarity(projections[:, 0], projections[:, 1], dim=-1).mean()

    def distillation_loss(self, predicted, teacher, temperature=0.2):
        return ((predicted - teacher.detach()) ** 2).sum(-1).mean()


def build_template(stream, plugins, method, epochs=1):
    """The make_template fixture's template with any method instance (train_seed 0)."""
    torch.manual_seed(0)
    train = TrainConfig(batch_size=32, lr=2e-3)
    if isinstance(method, str):
        model, method = build_model(dataclasses.replace(train, method=method), 8)
    else:
        backbone = backbones.get(train.backbone)(8)
        head = method.make_head(backbone.feature_dim)
        model = SSLModel(backbone, head, method.make_predictor())
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
        train_seed=0,
    )


def train(strategy, stream, experiences=2):
    strategy.train_seed = 0  # experience k's data order and views from (0, k)
    for experience in stream.benchmark.train_stream[:experiences]:
        strategy.train(experience, eval_streams=[])
    return strategy


class PNRSpy(PNRPlugin):
    """Records every step's terms and the first regularised step's tensors and total."""

    def __init__(self, options=None):
        super().__init__(options)
        self.steps: list[dict[str, float]] = []
        self.first_step: dict | None = None

    def before_training_exp(self, strategy, *args, **kwargs):
        super().before_training_exp(strategy, *args, **kwargs)
        if self.teacher.active:
            self.teacher_start = [p.clone() for p in self.teacher.model.parameters()]

    def before_backward(self, strategy, *args, **kwargs):
        rng = torch.get_rng_state()
        had_predictor = self.predictor is not None
        super().before_backward(strategy, *args, **kwargs)
        if self.teacher.active and self.first_step is None:
            self.first_step = {
                "rng_unchanged": torch.equal(rng, torch.get_rng_state()),
                "created_here": not had_predictor,
                "student": strategy.mb_output.projections.detach().clone(),
                "teacher": self.teacher(strategy.mb_x).projections,
                "total": strategy.loss.item(),
                "terms": {k: v.item() for k, v in strategy.loss_terms.items()},
            }
            if self.predictor is not None:
                self.first_step["predictor_start"] = [
                    p.detach().clone() for p in self.predictor.parameters()
                ]

    def after_backward(self, strategy, *args, **kwargs):
        step = self.first_step
        if step is not None and "predicted" not in step and self.predictor is not None:
            with torch.no_grad():  # not stepped yet; batch statistics: same output as the step's
                step["predicted"] = predict_views(self.predictor, step["student"])

    def after_training_iteration(self, strategy, *args, **kwargs):
        self.steps.append({k: v.item() for k, v in strategy.loss_terms.items()})


# -- hand-written paper objectives, anchor by anchor -------------------------------------


def _rows(x):
    return [x[i, v] for i in range(x.shape[0]) for v in range(x.shape[1])]


def _cos(a, b):
    return float(a @ b) / (float(a.norm()) * float(b.norm()))


def paper_contrastive_total(z, z_prev, p, ssl_temperature, temperature, weight):
    """L_ssl^PNR + weight * L_reg^PNR (the paper code's simclr_moco_loss_func), written out:
    rows 2i, 2i+1 are image i's two views."""
    current, previous, predicted = _rows(z), _rows(z_prev), _rows(p)
    n = len(current)
    ssl = reg = 0.0
    for a in range(n):
        others = [b for b in range(n) if b != a]
        t = ssl_temperature
        numerator = math.exp(_cos(current[a], current[a ^ 1]) / t)
        denominator = sum(math.exp(_cos(current[a], current[b]) / t) for b in others)
        denominator += sum(math.exp(_cos(current[a], previous[b]) / t) for b in others)
        ssl -= math.log(numerator / denominator)
        t = temperature
        numerator = math.exp(_cos(predicted[a], previous[a]) / t)
        denominator = sum(math.exp(_cos(predicted[a], previous[b]) / t) for b in others)
        denominator += sum(math.exp(_cos(predicted[a], current[b]) / t) for b in others)
        reg -= math.log(numerator / denominator)
    return ssl / n + weight * reg / n


def paper_non_contrastive_extra(p, z_prev, weight, negative_weight, negative):
    """weight * D_distill(p^v, z^{-,v}) - negative_weight * D(p^v, z^{-,v'}), the toy's D_distill
    a squared error, D the negative cosine (``cosine``, and ``auto``: the toy keeps
    SSLMethod's default pnr_negative), the mean squared error (``mse``) or the toy's squared
    error (``method``)."""
    batch, views = p.shape[:2]
    count = batch * views
    distill = sum(
        float(((p[i, v] - z_prev[i, v]) ** 2).sum()) for i in range(batch) for v in (0, 1)
    )
    pairs = [(p[i, v], z_prev[i, 1 - v]) for i in range(batch) for v in (0, 1)]
    if negative in ("cosine", "auto"):
        distance = -sum(_cos(a, b) for a, b in pairs) / count
    elif negative == "mse":
        distance = sum(float(((a - b) ** 2).mean()) for a, b in pairs) / count
    else:  # the toy's distillation loss
        distance = sum(float(((a - b) ** 2).sum()) for a, b in pairs) / count
    return weight * distill / count - negative_weight * distance


# -- SimCLR: the contrastive form -------------------------------------------------------


@pytest.mark.parametrize(
    ("ssl_temperature", "options"),
    [(0.5, PNROptions()), (0.2, PNROptions(weight=2.0, temperature=0.1))],
)
def test_simclr_total_is_the_papers_objective(tiny_stream, ssl_temperature, options):
    """ssl (NT-Xent, the template's) + pnr_ssl + pnr_reg == L_ssl^PNR + weight * L_reg^PNR."""
    method = SimCLR(SimCLROptions(temperature=ssl_temperature))
    spy = PNRSpy(options)
    train(build_template(tiny_stream, [spy], method), tiny_stream)
    step = spy.first_step
    z, z_prev, p = step["student"], step["teacher"], step["predicted"]
    expected = paper_contrastive_total(
        z, z_prev, p, ssl_temperature, options.temperature, options.weight
    )
    assert step["total"] == pytest.approx(expected, rel=1e-5)
    assert set(step["terms"]) == {"ssl", "pnr_ssl", "pnr_reg"}
    assert step["terms"]["ssl"] == pytest.approx(method.loss(z).item(), rel=1e-5)
    assert step["total"] == pytest.approx(sum(step["terms"].values()), rel=1e-6)
    assert step["created_here"] and step["rng_unchanged"]


def test_with_batch_statistics_the_first_step_pays_log_2(tiny_stream, make_template):
    """At experience 1's first step teacher == student (batch-statistics BatchNorm), so every
    anchor's denominator doubles: pnr_ssl = log 2."""
    spy = PNRSpy()
    train(make_template(tiny_stream, [spy]), tiny_stream)
    assert torch.allclose(spy.first_step["teacher"], spy.first_step["student"], atol=1e-5)
    assert spy.first_step["terms"]["pnr_ssl"] == pytest.approx(math.log(2), rel=1e-4)


def test_weight_zero_keeps_only_the_pseudo_negatives_of_the_ssl_term(tiny_stream, make_template):
    spy = PNRSpy(PNROptions(weight=0))
    train(make_template(tiny_stream, [spy]), tiny_stream)
    assert spy.predictor is None and spy.state_dict() == {}
    assert set(spy.first_step["terms"]) == {"ssl", "pnr_ssl"}


# -- every other method: the non-contrastive form ---------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        PNROptions(),
        PNROptions(weight=0.5, negative_weight=2.0),
        PNROptions(negative="mse", negative_weight=23.0),
        PNROptions(negative="method", weight=25.0, negative_weight=23.0),
    ],
)
def test_non_contrastive_total_is_the_papers_objective(tiny_stream, options):
    spy = PNRSpy(options)
    method = SquaredErrorMethod()
    train(build_template(tiny_stream, [spy], method), tiny_stream)
    step = spy.first_step
    z, z_prev, p = step["student"], step["teacher"], step["predicted"]
    extra = paper_non_contrastive_extra(
        p, z_prev, options.weight, options.negative_weight, options.negative
    )
    assert set(step["terms"]) == {"ssl", "pnr_reg", "pnr_negative"}
    ssl = method.loss(z).item()
    assert step["terms"]["ssl"] == pytest.approx(ssl, rel=1e-5)
    assert step["total"] == pytest.approx(ssl + extra, rel=1e-5, abs=1e-5)
    assert step["created_here"] and step["rng_unchanged"]


@pytest.mark.parametrize("name", [n for n in methods.names() if n != "simclr"])
def test_every_registered_non_contrastive_method_trains_with_pnr(name, tiny_stream):
    spy = PNRSpy()
    train(build_template(tiny_stream, [spy], name), tiny_stream)
    assert spy.first_step is not None
    assert all(set(s) == {"ssl"} for s in spy.steps[:4])  # experience 0: naive
    assert set(spy.steps[-1]) == {"ssl", "pnr_reg", "pnr_negative"}
    assert all(math.isfinite(v) for s in spy.steps for v in s.values())


def _cos(a, b):
    return F.cosine_similarity(a, b, dim=-1).mean().item()


# The paper code's pnr_reg and pnr_negative (weight 1, negative_weight 1: ``negative=auto``),
# from cassle/distillers/{byol,vicreg}_pnr.py and the cifar scripts' distill_lamb and
# negative_lamb, in each method's loss units (BYOL's: the reference's / 4).
REFERENCE_TERMS = {
    "vicreg": lambda p, z, n: (25 * F.mse_loss(p, z).item(), -23 * F.mse_loss(p, n).item()),
    "byol": lambda p, z, n: ((2 - 2 * _cos(p, z)) / 4, -0.5 * (2 - 2 * _cos(p, n)) / 4),
}
SMALL = {
    "vicreg": lambda: VICReg(VICRegOptions(hidden_dim=32, output_dim=16)),
    "byol": lambda: BYOL(BYOLOptions(hidden_dim=32, output_dim=16, pred_hidden_dim=32)),
}


@pytest.mark.parametrize("name", list(REFERENCE_TERMS))
def test_default_terms_are_each_methods_reference(name, tiny_stream):
    """negative=auto: VICReg's MSE weighted 23 (not the cosine at weight 1), BYOL's 2 - 2cos
    weighted 0.5; pnr_reg is the method's CaSSLe term (VICReg's invariance MSE x 25)."""
    spy = PNRSpy()
    train(build_template(tiny_stream, [spy], SMALL[name]()), tiny_stream)
    step = spy.first_step
    p, z_prev = step["predicted"], step["teacher"]
    reg, negative = REFERENCE_TERMS[name](p, z_prev, z_prev.flip(1))
    assert step["terms"]["pnr_reg"] == pytest.approx(reg, rel=1e-4)
    assert step["terms"]["pnr_negative"] == pytest.approx(negative, rel=1e-4)


def test_a_mixture_keeps_simclrs_pseudo_negatives_and_each_components_terms(tiny_stream):
    """simclr+vicreg: SimCLR's slice gets the contrastive terms (pnr_ssl, its pnr_reg), the
    VICReg slice its own, each times its mixing weight."""
    method = build_method(
        "simclr+vicreg",
        {
            "simclr": {"output-dim": "16"},
            "vicreg": {"hidden-dim": "32", "output-dim": "8", "weight": "0.5"},
        },
    )
    spy = PNRSpy()
    train(build_template(tiny_stream, [spy], method), tiny_stream)
    step = spy.first_step
    z, z_prev, p = step["student"], step["teacher"], step["predicted"]
    s, v = slice(0, 16), slice(16, 24)
    assert set(step["terms"]) == {"ssl", "pnr_ssl", "pnr_reg", "pnr_negative"}
    assert step["terms"]["pnr_ssl"] == pytest.approx(
        pnr_ssl_excess(z[..., s], z_prev[..., s], 0.5).item(), rel=1e-4
    )
    contrastive = pnr_contrastive_regularization(p[..., s], z_prev[..., s], z[..., s], 0.2)
    reg, negative = REFERENCE_TERMS["vicreg"](p[..., v], z_prev[..., v], z_prev[..., v].flip(1))
    assert step["terms"]["pnr_reg"] == pytest.approx(contrastive.item() + 0.5 * reg, rel=1e-4)
    assert step["terms"]["pnr_negative"] == pytest.approx(0.5 * negative, rel=1e-4)


# -- lifecycle: naive on experience 0, predictor, state ---------------------------------


def test_first_experience_is_naive_bit_for_bit(tiny_stream, make_template):
    naive_steps = []

    class NaiveSpy(SupervisedPlugin):
        def after_training_iteration(self, strategy, *args, **kwargs):
            naive_steps.append({k: v.item() for k, v in strategy.loss_terms.items()})

    naive = train(make_template(tiny_stream, [NaiveSpy()]), tiny_stream, experiences=1)
    spy = PNRSpy()
    pnr = train(make_template(tiny_stream, [spy]), tiny_stream, experiences=1)
    assert spy.steps == naive_steps and all(set(s) == {"ssl"} for s in spy.steps)
    assert spy.predictor is None and not spy.teacher.active
    for (name, a), (_, b) in zip(
        naive.model.state_dict().items(), pnr.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_first_experience_equals_naive_in_the_bench(tiny_bench):
    naive, pnr = run_bench(tiny_bench("naive,pnr")).strategies
    first = naive.metrics[naive.metrics.train_exp <= 0].drop(columns="strategy")
    second = pnr.metrics[pnr.metrics.train_exp <= 0].drop(columns="strategy")
    pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))
    assert not naive.loss_matrix.iloc[1:].equals(pnr.loss_matrix.iloc[1:])


def test_predictor_learns_is_in_the_main_optimizer_once_and_persists(tiny_stream, make_template):
    spy = PNRSpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strategy = train(make_template(tiny_stream, [spy], epochs=2), tiny_stream)
        predictor = spy.predictor
        strategy.train(tiny_stream.benchmark.train_stream[2], eval_streams=[])
    assert spy.predictor is predictor
    for now, start in zip(spy.teacher.model.parameters(), spy.teacher_start, strict=True):
        assert torch.equal(now, start) and not now.requires_grad
    moved = [
        not torch.equal(p, s)
        for p, s in zip(predictor.parameters(), spy.first_step["predictor_start"], strict=True)
    ]
    assert all(moved)
    assert not any(p is q for p in strategy.model.parameters() for q in predictor.parameters())
    optimizer = strategy.optimizer
    ids = [id(p) for group in optimizer.param_groups for p in group["params"]]
    params = list(predictor.parameters())
    assert all(ids.count(id(p)) == 1 for p in params)
    assert len(ids) == len(set(ids)) == len(list(strategy.model.parameters())) + len(params)
    (group,) = [g for g in optimizer.param_groups if any(p is params[0] for p in g["params"])]
    assert group is not optimizer.param_groups[0]
    for key in ("lr", "weight_decay", "betas", "eps"):
        assert group[key] == optimizer.param_groups[0][key], key
    assert all(optimizer.state[p] and optimizer.state[p]["step"] > 0 for p in params)
    assert not [w for w in caught if "param" in str(w.message).lower()]


def test_state_round_trips_and_a_restored_run_continues_exactly(tiny_stream, make_template):
    plugin = PNRPlugin()
    full = train(make_template(tiny_stream, [plugin]), tiny_stream)
    buffer = io.BytesIO()
    torch.save(capture(full, {"pnr": plugin}), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert set(state["plugins"]["pnr"]) == {"weights", "dim"}
    full.train(tiny_stream.benchmark.train_stream[2], eval_streams=[])

    fresh = PNRPlugin()
    fresh.load_state_dict(state["plugins"]["pnr"])
    for key, value in state["plugins"]["pnr"]["weights"].items():
        assert torch.equal(fresh.state_dict()["weights"][key], value), key
    assert PNRPlugin().state_dict() == {}

    fresh = PNRPlugin()
    resumed = make_template(tiny_stream, [fresh])
    resumed.train_seed = 0  # as train() set it for the uninterrupted run
    full_model = full.model.state_dict()
    restore(resumed, {"pnr": fresh}, state)
    resumed.train(tiny_stream.benchmark.train_stream[2], eval_streams=[])
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, full_model[name]), name
    for a, b in zip(plugin.predictor.parameters(), fresh.predictor.parameters(), strict=True):
        assert torch.equal(a, b)
    ids = [id(p) for g in resumed.optimizer.param_groups for p in g["params"]]
    assert all(ids.count(id(p)) == 1 for p in fresh.predictor.parameters())


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(weight=-1), "pnr.weight"),
        (dict(negative_weight=-0.1), "pnr.negative-weight"),
        (dict(negative="l1"), "pnr.negative"),
        (dict(negative="none"), "'auto', 'cosine', 'mse' or 'method'"),
        (dict(temperature=0), "pnr.temperature"),
        (dict(hidden_dim=0), "pnr.hidden-dim"),
        (dict(teacher_bn="train"), "pnr.teacher-bn"),
    ],
)
def test_bad_options_are_rejected(options, match):
    with pytest.raises(ValueError, match=match):  # the options' own checks, or the plugin's
        PNRPlugin(PNROptions(**options))


def test_options_parse_from_the_command_line():
    from cl_ssl.strategy import build_plugins

    raw = {"negative-weight": "0.5", "negative": "method", "temperature": "0.1"}
    (plugin,) = build_plugins(["pnr"], {"pnr": raw})
    assert plugin.options == PNROptions(negative_weight=0.5, negative="method", temperature=0.1)
