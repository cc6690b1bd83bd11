"""Full-state checkpoints: every strategy resumes exactly where it stopped."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from cl_ssl.bench import run_bench
from cl_ssl.checkpoint import load_training_state
from cl_ssl.registry import strategies
from cl_ssl.state import Stateful, random_state, set_random_state
from cl_ssl.strategy import build_plugins


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_random_state_round_trips_every_generator():
    state = random_state()
    first = draws()
    set_random_state(state)
    assert draws() == first
    assert draws() != first


def _equal(a, b) -> bool:
    """Nested state equality, tensors compared exactly."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool((a == b).all())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# Every strategy with its defaults, and replay with each online buffer (cl_ssl.kit.buffers).
RESUMED = [(name, {}) for name in strategies.names()] + [
    ("replay", {"buffer": kind, "mem-size": "30"})
    for kind in ("minred", "reservoir", "fifo", "balanced")
]


@pytest.mark.parametrize(
    ("name", "options"), RESUMED, ids=[f"{n}-{o.get('buffer', 'default')}" for n, o in RESUMED]
)
def test_a_resumed_run_equals_the_uninterrupted_one(name, options, tiny_bench, tmp_path):
    """Stop after experience 1 (files of later ones gone), resume: every metric is equal.

    Three experiences: the state a strategy saved after two trains the third, and its state
    after that is compared too.
    """
    stream = replace(tiny_bench().stream_options, dataset="digits", tasks=3, max_images=60)
    config = replace(
        tiny_bench(name, epochs=2),
        stream="split",
        stream_options=stream,
        strategy_options={name: options} if options else {},
    )
    full = run_bench(config)
    assert full.ok, full.failures
    run = full.directory / name / "seed0"
    copy = tmp_path / "interrupted"
    shutil.copytree(full.directory, copy)
    stopped = copy / name / "seed0"
    (stopped / "results.json").unlink()
    (stopped / "checkpoints" / "exp2.pt").unlink()
    pd.DataFrame(columns=["x"]).to_csv(stopped / "metrics.csv")  # the killed run's partial rows

    resumed = run_bench(replace(config, out=tmp_path, run_name="interrupted"), resume=True)

    assert resumed.ok, resumed.failures
    expected = pd.read_csv(run / "metrics.csv")
    got = pd.read_csv(stopped / "metrics.csv")
    pd.testing.assert_frame_equal(got, expected)  # bit-identical on CPU
    final_full = load_training_state(run / "checkpoints" / "exp2.pt")[0]
    final_resumed = load_training_state(stopped / "checkpoints" / "exp2.pt")[0]
    assert _equal(final_resumed["model"], final_full["model"])
    assert _equal(final_resumed["plugins"], final_full["plugins"])


@pytest.mark.parametrize("name", strategies.names())
def test_every_strategy_state_round_trips_through_a_fresh_plugin(name, tiny_bench):
    """The plugin protocol: load_state_dict(state_dict()) on a new plugin gives the same state."""
    result = run_bench(tiny_bench(name))
    checkpoint = result.directory / name / "seed0" / "checkpoints" / "exp1.pt"
    state = load_training_state(checkpoint)[0]["plugins"][name]
    (plugin,) = build_plugins([name])
    assert isinstance(plugin, Stateful)
    plugin.load_state_dict(state)
    assert _equal(plugin.state_dict(), state)


def test_a_checkpoint_loads_without_its_run_folder(tiny_bench, tmp_path):
    """Nothing in it points into the run folder (loggers and writers are never saved)."""
    result = run_bench(tiny_bench("ewc+replay"))
    kept = tmp_path / "kept.pt"
    shutil.copy(result.directory / "ewc+replay" / "seed0" / "checkpoints" / "exp2.pt", kept)
    shutil.rmtree(result.directory)
    state, info, config = load_training_state(kept)  # weights_only: tensors and plain values
    assert info.experience == 2 and config["strategy"] == "ewc+replay"
    assert set(state["plugins"]) == {"ewc", "replay"}
    assert len(state["run"]["rows"]) > 0 and state["clock"]["train_exp_counter"] == 3
