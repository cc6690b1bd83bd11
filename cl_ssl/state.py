"""The state of a run between two experiences: what a checkpoint must carry to go on exactly.

A run resumed from the state written after experience k trains experience k + 1 with the
same model, optimizer moments, strategy state (EWC importances, replay buffer, CaSSLe's
predictor, ...), clock and random streams as the uninterrupted run, so its metrics are
equal on CPU. :func:`capture` gathers that state from a live :class:`SSLTemplate`;
:func:`restore` puts it back into a freshly built one.

Strategies take part through one small protocol, :class:`Stateful`: ``state_dict()``
returns tensors, numbers, strings and containers of them (no modules, no loggers, no open
files: a checkpoint must load with ``torch.load(weights_only=True)`` after its run folder
is gone) and ``load_state_dict(state)`` takes it back. A plugin without state inherits
:class:`NoState`.

Example:
    >>> state = capture(strategy, {"lwf-ssl": plugin})
    >>> torch.save(state, "state.pt")
    >>> restore(fresh_strategy, {"lwf-ssl": fresh_plugin}, torch.load("state.pt"))
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

STATE_VERSION = 1


@runtime_checkable
class Stateful(Protocol):
    """What a strategy plugin implements so checkpoints carry it (torch's naming)."""

    def state_dict(self) -> dict[str, Any]:
        """Tensors, numbers, strings and containers of them; never modules or loggers."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned (on a freshly built plugin)."""
        ...


class NoState:
    """Mixin of plugins whose only state is their options (naive, for instance)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no state but got keys {sorted(state)}")


def random_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's (CPU and CUDA) global random states, tensors only."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        # NumPy arrays need an unsafe unpickler: keep the key as a tensor instead.
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: Mapping[str, Any]) -> None:
    """Undo :func:`random_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _clock_state(clock: Any) -> dict[str, int]:
    return {k: v for k, v in vars(clock).items() if isinstance(v, int)}


def capture(strategy: Any, plugins: Mapping[str, Stateful], run: Mapping[str, Any] | None = None):
    """The whole training state of ``strategy`` after an experience, as a plain dict.

    Args:
        strategy: The :class:`~cl_ssl.template.SSLTemplate` that just trained.
        plugins: Strategy plugins by registry name (``{"ewc": plugin}``).
        run: What the caller keeps besides (metrics rows so far, timings).
    """
    evaluator_state = {
        type(metric).__name__: metric.state_dict()
        for metric in strategy.evaluator.metrics
        if isinstance(metric, Stateful)
    }
    return {
        "version": STATE_VERSION,
        "model": {k: v.detach().cpu().clone() for k, v in strategy.model.state_dict().items()},
        "optimizer": strategy.optimizer.state_dict(),
        "method": {k: v.detach().cpu().clone() for k, v in strategy.method.state_dict().items()},
        "plugins": {name: plugin.state_dict() for name, plugin in plugins.items()},
        "clock": _clock_state(strategy.clock),
        "template": strategy.counters(),
        "evaluator": evaluator_state,
        "random": random_state(),
        "run": dict(run or {}),
    }


def restore(strategy: Any, plugins: Mapping[str, Stateful], state: Mapping[str, Any]) -> None:
    """Put :func:`capture`'s ``state`` back into a freshly built strategy and its plugins.

    The optimizer state is applied when the next experience starts (once plugins that own
    parameter groups, e.g. CaSSLe's predictor, have added them back).
    """
    restore_plugins(plugins, state)
    _restore_training(strategy, state)


def restore_plugins(plugins: Mapping[str, Stateful], state: Mapping[str, Any]) -> None:
    """The strategy plugins' part of :func:`capture`'s ``state``, checked against the run's."""
    if state.get("version") != STATE_VERSION:
        raise ValueError(
            f"training state of version {state.get('version')}, this cl-ssl reads "
            f"{STATE_VERSION}: resume with the cl-ssl version that wrote it"
        )
    missing = sorted(set(plugins) - set(state["plugins"]))
    extra = sorted(set(state["plugins"]) - set(plugins))
    if missing or extra:
        raise ValueError(
            f"the checkpoint holds the state of strategies {sorted(state['plugins'])}, the run "
            f"has {sorted(plugins)}: resume with the checkpoint's --strategy"
        )
    for name, plugin in plugins.items():
        plugin.load_state_dict(state["plugins"][name])


def _restore_training(strategy: Any, state: Mapping[str, Any]) -> None:
    """Everything of ``state`` but the plugins: weights, clock, counters, metrics, randomness."""
    strategy.model.load_state_dict(state["model"])
    strategy.method.load_state_dict(state["method"])  # e.g. BYOL's target network
    for key, value in state["clock"].items():
        setattr(strategy.clock, key, value)
    strategy.load_counters(state["template"])
    for metric in strategy.evaluator.metrics:
        saved = state["evaluator"].get(type(metric).__name__)
        if saved is not None and isinstance(metric, Stateful):
            metric.load_state_dict(saved)
    strategy.load_optimizer_state(state["optimizer"])
    set_random_state(state["random"])


def generators(plugins: Mapping[str, Any]) -> dict[str, dict[str, Tensor]]:
    """The states of the :class:`torch.Generator` s plugins draw from during training.

    Found as attributes of a plugin or of its attributes (replay's ``generator``, its
    streaming buffer's ``streaming.generator``): ``{plugin: {"attr[.attr]": state}}``.
    Between experiences they need no saving (each is seeded from ``(seed, k)`` when an
    experience begins); inside one they do.
    """
    return {
        name: {path: generator.get_state() for path, generator in _generators(plugin)}
        for name, plugin in plugins.items()
    }


def set_generators(plugins: Mapping[str, Any], states: Mapping[str, Mapping[str, Tensor]]) -> None:
    """Undo :func:`generators`."""
    for name, plugin in plugins.items():
        found = dict(_generators(plugin))
        for path, state in states.get(name, {}).items():
            found[path].set_state(state)


def _generators(plugin: Any) -> list[tuple[str, torch.Generator]]:
    found = []
    for attr, value in vars(plugin).items():
        if isinstance(value, torch.Generator):
            found.append((attr, value))
        elif hasattr(value, "__dict__") and not isinstance(value, torch.nn.Module | type):
            found += [
                (f"{attr}.{inner}", v)
                for inner, v in vars(value).items()
                if isinstance(v, torch.Generator)
            ]
    return found


def restore_within(strategy: Any, plugins: Mapping[str, Any], state: Mapping[str, Any]) -> Any:
    """Put an in-experience state (:mod:`cl_ssl.interim`) back, after ``before_training_exp``.

    The plugins' own state was loaded before the experience began (:func:`restore_plugins`),
    so what they derive from the model at its start (a teacher) is the start's; here the
    saved weights, optimizer, clock, metric states and random streams (of the plugins'
    generators too) replace the start's. Under torchrun each rank takes its own random
    states and floating buffers back. Returns the :class:`cl_ssl.interim.Position`.
    """
    from cl_ssl import distributed
    from cl_ssl.interim import Position

    _restore_training(strategy, state)
    within = state["within"]
    set_generators(plugins, within["generators"])
    epoch_random, step_random = within["epoch_random"], state["random"]
    ranks = within.get("ranks")
    if ranks is not None:
        if len(ranks) != distributed.world_size():
            raise ValueError(
                f"the checkpoint was written by {len(ranks)} processes, this run has "
                f"{distributed.world_size()}: resume with --nproc_per_node {len(ranks)}"
            )
        mine = ranks[distributed.rank()]
        epoch_random, step_random = mine["epoch_random"], mine["random"]
        set_random_state(step_random)
        buffers = dict(strategy.model.named_buffers())
        for key, value in mine["buffers"].items():
            buffers[key].data.copy_(value)
    return Position(
        within["experience"], within["epoch"], within["step"], epoch_random, step_random
    )
