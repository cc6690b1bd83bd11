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
