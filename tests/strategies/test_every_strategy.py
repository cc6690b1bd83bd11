"""Parametrized over the strategy registry: a new strategy file is tested automatically."""

import math

import pytest

from cl_ssl.bench import run_bench
from cl_ssl.registry import strategies


@pytest.mark.parametrize("name", strategies.names())
def test_strategy_runs_end_to_end_on_a_tiny_stream(name, tiny_bench):
    result = run_bench(tiny_bench(name)).strategies[0]
    matrix = result.loss_matrix
    assert matrix.shape == (5, 5)
    assert all(math.isfinite(v) for v in matrix.values.flatten())


@pytest.mark.parametrize(
    "spec", ["lwf-ssl+replay", "cassle+replay", "ewc+replay", "pnr+replay", "lwf-ssl+pnr"]
)
def test_compositions_that_own_nothing_in_common_are_accepted(spec):
    from cl_ssl.strategy import parse_spec

    assert parse_spec(spec) == [tuple(spec.split("+"))]


def test_plugins_that_own_one_role_do_not_compose(monkeypatch):
    """Read from the plugins' ``owns``: a new plugin owning 'distill' clashes as well."""
    from avalanche.core import SupervisedPlugin

    from cl_ssl.strategy import parse_spec

    class Other(SupervisedPlugin):
        owns = frozenset({"distill"})

    monkeypatch.setattr(strategies, "_entries", dict(strategies._entries))
    strategies.add("other-distill", Other)
    with pytest.raises(ValueError, match="'lwf-ssl' and 'other-distill' both own the 'distill'"):
        parse_spec("naive,lwf-ssl+other-distill")
    assert parse_spec("ewc+other-distill") == [("ewc", "other-distill")]


def test_composed_run_pays_every_plugins_term(tiny_stream, make_template):
    """``lwf-ssl+replay``: distillation on batches that also carry buffered images."""
    from avalanche.core import SupervisedPlugin

    from cl_ssl.strategy import build_plugins, parse_spec

    (run,) = parse_spec("lwf-ssl+replay")
    plugins = build_plugins(
        run, {"replay": {"mem-size": "24", "batch-size-mem": "8", "mode": "double"}}
    )
    seen: list[tuple[int, set[str]]] = []

    class Spy(SupervisedPlugin):
        def after_training_iteration(self, strategy, *args, **kwargs):
            seen.append((strategy.mb_x.shape[0], set(strategy.loss_terms)))

    strategy = make_template(tiny_stream, [*plugins, Spy()])
    for experience in tiny_stream.benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    steps = len(seen) - math.ceil(len(tiny_stream.benchmark.train_stream[0].dataset) / 32)
    last = seen[-steps:]
    assert all(terms == {"ssl", "distill"} for _, terms in last)
    assert (
        sum(size for size, _ in last)
        == len(tiny_stream.benchmark.train_stream[1].dataset) + 8 * steps
    )
