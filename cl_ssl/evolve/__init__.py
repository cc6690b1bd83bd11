"""Evolutionary search of loss weights (``clssl evolve``), after Piergiovanni et al. 2020.

A population of weight settings improves one mutated child per round: tournament
selection, one weight mutated, the child replaces the worst member if it is fitter.
:mod:`cl_ssl.evolve.search` is the algorithm (no training, no torch);
:mod:`cl_ssl.evolve.outputs` writes the history CSV, a weight heatmap and TensorBoard
scalars.

Example:
    >>> space = WeightSpace({"lwf-ssl.lambda": (0.0, 1.0)})
    >>> search = EvolutionarySearch(space, EvolveConfig(rounds=30), fitness)
    >>> search.run(state_path="runs/evolve/state.json")
    >>> search.best.weights
"""

from __future__ import annotations

from cl_ssl.evolve.outputs import (
    best_per_round,
    history_frame,
    log_tensorboard,
    plot_weight_heatmap,
    write_history_csv,
)
from cl_ssl.evolve.search import (
    EvolutionarySearch,
    EvolveConfig,
    Fitness,
    Individual,
    WeightSpace,
)

__all__ = [
    "EvolutionarySearch",
    "EvolveConfig",
    "Fitness",
    "Individual",
    "WeightSpace",
    "best_per_round",
    "history_frame",
    "log_tensorboard",
    "plot_weight_heatmap",
    "write_history_csv",
]
