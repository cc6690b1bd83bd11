"""Every strategy works with every method (both registries, so additions are tested too)."""

from __future__ import annotations

import itertools
from dataclasses import fields, replace

import pytest
import torch
import torch.nn.functional as F
from avalanche.evaluation.metrics import loss_metrics
from avalanche.training.plugins import EvaluationPlugin
from lightly.loss import BarlowTwinsLoss, NTXentLoss

from cl_ssl.augment import make_augment
from cl_ssl.bench import build_model, make_optimizer, run_bench
from cl_ssl.config import EvalConfig, TrainConfig
from cl_ssl.kit.losses.cassle import predict_views
from cl_ssl.kit.losses.pnr import pnr_contrastive_regularization, pnr_ssl_excess
from cl_ssl.methods.distillation import contrastive_distillation
from cl_ssl.registry import methods, strategies
from cl_ssl.template import SSLTemplate


def narrow(method: str) -> dict[str, dict[str, str]]:
    """Every width option of the method at 32: the paper sizes (2048-4096) cost minutes here."""
    options = {}
    for part in method.split("+"):  # a mixture: each method's own options
        names = [f.name for f in fields(methods.get(part).Options) if f.name.endswith("_dim")]
        options[part] = {name.replace("_", "-"): "32" for name in names}
    return options


# A mixture of objectives (one head each, concatenated) goes through every strategy too.
METHODS = [*methods.names(), "simclr+barlow-twins"]


@pytest.mark.parametrize(
    ("method", "strategy"), list(itertools.product(METHODS, strategies.names()))
)
def test_strategy_trains_with_method(method, strategy, tiny_bench):
    config = tiny_bench(strategy, method=method, method_options=narrow(method))
    # Two experiences reach every state a strategy has (its teacher, buffer, importances or
    # predictor are built after the first and used in the second) at a fraction of five's
    # cost: 54 pairs run here. One cheap accuracy is enough; checkpoints stay on (every state
    # must save).
    config = replace(
        config,
        stream="split",
        stream_options=replace(config.stream_options, dataset="digits", tasks=2),
        evaluation=EvalConfig(knn_k=(5,), linear_probe=False, kmeans=False),
    )
    result = run_bench(config)
    assert result.ok, result.failures[0].describe() if result.failures else ""
    metrics = result.strategies[0].metrics
    losses = metrics.query("metric == 'ssl_loss' and train_exp == 1")["value"]
    assert len(losses) == 2 and losses.notna().all()
    assert (config.out / config.run_name / strategy / "seed0" / "checkpoints" / "exp1.pt").is_file()


# -- a mixture distils each component its own way ---------------------------------------


def first_distillation_step(strategy_name, method, stream):
    """Train ``method`` (SimCLR weight 1, Barlow Twins 0.5) for two experiences with the
    strategy; its first distillation step's student, teacher, prediction and loss terms."""
    options = narrow(method)
    options["barlow-twins"]["weight"] = "0.5"
    torch.manual_seed(0)
    train = TrainConfig(batch_size=32, lr=2e-3, method=method, method_options=options)
    model, ssl_method = build_model(train, 8)
    seen: dict = {}

    class Spy(strategies.get(strategy_name)):
        def before_backward(self, strategy, *args, **kwargs):
            super().before_backward(strategy, *args, **kwargs)
            if self.teacher.active and not seen:
                student = strategy.mb_output.projections.detach().clone()
                seen.update(student=student, teacher=self.teacher(strategy.mb_x).projections)
                seen["terms"] = {k: v.item() for k, v in strategy.loss_terms.items()}
                with torch.no_grad():  # not stepped yet; batch statistics: the step's output
                    seen["predicted"] = predict_views(self.predictor, student)

    config = replace(ssl_method.augment_config(8), **stream.augment_overrides)
    template = SSLTemplate(
        model=model,
        optimizer=make_optimizer(train, model),
        method=ssl_method,
        augment=make_augment("batched", config),
        train_mb_size=32,
        train_epochs=1,
        eval_mb_size=64,
        plugins=[Spy()],
        evaluator=EvaluationPlugin(loss_metrics(experience=True), loggers=[]),
        train_seed=0,
    )
    for experience in stream.benchmark.train_stream[:2]:
        template.train(experience, eval_streams=[])
    return seen, ssl_method.sizes


def barlow_per_view(p, t):
    loss = BarlowTwinsLoss(lambda_param=5e-3)
    return ((loss(p[:, 0], t[:, 0]) + loss(p[:, 1], t[:, 1])) / 2).item()


@pytest.mark.parametrize("strategy", ["cassle", "pnr"])
def test_a_mixture_distils_each_component_its_own_way(strategy, tiny_stream):
    """simclr+barlow-twins: SimCLR's slice gets CaSSLe's contrastive term at 0.2 (and PNR's
    pseudo-negatives), never NT-Xent between prediction and teacher; Barlow Twins' slice its
    per-view loss and PNR's 10 * -cos negative; the Barlow terms times its weight 0.5."""
    step, sizes = first_distillation_step(strategy, "simclr+barlow-twins", tiny_stream)
    s, b = slice(0, sizes[0]), slice(sizes[0], sum(sizes))
    z, t, p = step["student"], step["teacher"], step["predicted"]
    barlow = barlow_per_view(p[..., b], t[..., b])
    terms = step["terms"]
    if strategy == "cassle":
        expected = contrastive_distillation(p[..., s], t[..., s], 0.2).item() + 0.5 * barlow
        assert terms["distill"] == pytest.approx(expected, rel=1e-4)
        ntxent = NTXentLoss(temperature=0.5)  # SSLMethod's fallback on SimCLR's slice
        fallback = sum(ntxent(p[:, v, s], t[:, v, s]).item() for v in (0, 1)) / 2 + 0.5 * barlow
        assert abs(terms["distill"] - fallback) > 1e-2
        return
    assert set(terms) == {"ssl", "pnr_ssl", "pnr_reg", "pnr_negative"}
    assert terms["pnr_ssl"] == pytest.approx(
        pnr_ssl_excess(z[..., s], t[..., s], 0.5).item(), rel=1e-4
    )
    contrastive = pnr_contrastive_regularization(p[..., s], t[..., s], z[..., s], 0.2).item()
    assert terms["pnr_reg"] == pytest.approx(contrastive + 0.5 * barlow, rel=1e-4)
    cosine = F.cosine_similarity(p[..., b], t[..., b].flip(1), dim=-1).mean().item()
    assert terms["pnr_negative"] == pytest.approx(0.5 * 10 * cosine, rel=1e-4, abs=1e-6)
