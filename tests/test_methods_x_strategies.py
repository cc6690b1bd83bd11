"""Every strategy works with every method (both registries, so additions are tested too)."""

from __future__ import annotations

import itertools
from dataclasses import fields, replace

import pytest

from cl_ssl.bench import run_bench
from cl_ssl.config import EvalConfig
from cl_ssl.registry import methods, strategies


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
    # One cheap accuracy is enough here; checkpoints stay on (every state must save).
    config = replace(config, evaluation=EvalConfig(knn_k=(5,), linear_probe=False, kmeans=False))
    result = run_bench(config)
    assert result.ok, result.failures[0].describe() if result.failures else ""
    metrics = result.strategies[0].metrics
    losses = metrics.query("metric == 'ssl_loss' and train_exp == 4")["value"]
    assert len(losses) == 5 and losses.notna().all()
