"""What an evolutionary search leaves behind: a CSV, a weight heatmap, TensorBoard scalars.

Everything is computed from the history alone (a list of :class:`Individual`, e.g.
``EvolutionarySearch.history`` or a resumed state's), so a finished or interrupted search
can be reported without rerunning anything.

"Best after round r" is the fittest individual evaluated in rounds ``0..r`` (ties: lowest
id), round 0 being the initial population. Because a child enters the population only when
it beats the worst member, the population's best is never replaced, and this is exactly
the population best after round r (:func:`best_per_round`).

pandas, matplotlib and torch are imported inside the functions: importing
:mod:`cl_ssl.evolve` stays light for the command line.

Example:
    >>> write_history_csv(search.history, "runs/evolve/history.csv")
    >>> plot_weight_heatmap(search.history, space.names, "runs/evolve/weights.png")
    >>> log_tensorboard(search.history, "runs/evolve/tb")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cl_ssl.atomic import write_csv, write_figure
from cl_ssl.evolve.search import Individual, WeightSpace

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("id", "round", "parent", "mutated", "fitness", "error", "seconds")


def best_per_round(history: Sequence[Individual]) -> list[Individual]:
    """The best individual after each round ``0..R`` (index = round; see the module doc).

    Example:
        >>> [ind.id for ind in best_per_round(history)]  # 6 initial, then 3 rounds
        [4, 4, 6, 8]
    """
    if not history:
        return []
    best: list[Individual] = []
    current: Individual | None = None
    for ind in sorted(history, key=lambda ind: (ind.round, ind.id)):
        if current is None or ind.fitness > current.fitness:  # strict: the older wins ties
            current = ind
        if ind.round >= len(best):
            best.append(current)
        else:
            best[-1] = current
    return best


def history_frame(history: Sequence[Individual]) -> pd.DataFrame:
    """One row per individual, in evaluation order.

    Columns: ``id, round, parent, mutated, fitness, error, seconds``, then one per weight
    (named like the weight). A failed fitness is ``-inf``; ``parent`` is missing in round 0.
    """
    import pandas as pd

    names = list(history[0].weights) if history else []
    clash = sorted(set(names) & set(COLUMNS))
    if clash:
        raise ValueError(f"weight names {clash} clash with the history columns: rename them")
    rows = [
        {
            **{column: getattr(ind, column) for column in COLUMNS},
            **{name: ind.weights.get(name, math.nan) for name in names},
        }
        for ind in history
    ]
    frame = pd.DataFrame(rows, columns=[*COLUMNS, *names])
    frame["parent"] = frame["parent"].astype("Int64")  # None stays missing, ids stay ints
    return frame


def write_history_csv(history: Sequence[Individual], path: str | Path) -> Path:
    """:func:`history_frame` as CSV, atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, history_frame(history), index=False)
    return path


def plot_weight_heatmap(
    history: Sequence[Individual],
    weight_names: Sequence[str],
    path: str | Path,
    space: WeightSpace | None = None,
) -> Path:
    """PNG of the weight evolution: heatmap above, fitness below, one column per round.

    Top: rows = weights, columns = rounds ``0..R``, colour = the weight's value in the best
    individual after that round (:func:`best_per_round`); with ``space`` the colour is the
    position in the weight's range (0 = low, 1 = high; on the log axis for a ``"log"``
    range), so rows of different scales compare.
    Bottom: best fitness after each round (line) and each round's child (dots; failed
    children are left out).
    """
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no global backend, no display
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(weight_names)
    best = best_per_round(history)
    fig = Figure(figsize=(max(6.0, 0.25 * len(best) + 3), 2.5 + 0.4 * len(names)))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[max(1, len(names)), 2])
    if not best or not names:
        top.text(0.5, 0.5, "no individuals", ha="center", va="center")
    else:
        values = np.array([[ind.weights.get(n, np.nan) for ind in best] for n in names], float)
        label, limits = "weight value", (None, None)
        if space is not None:
            values = np.array(
                [
                    [space.position(n, v) if np.isfinite(v) else np.nan for v in row]
                    for n, row in zip(names, values, strict=True)
                ]
            )
            label = "position in range (0 = low; log ranges in log)"
            limits = (0.0, 1.0)  # the whole range, so a colour means the same in every row
        image = top.imshow(
            values,
            aspect="auto",
            interpolation="nearest",
            cmap="viridis",
            vmin=limits[0],
            vmax=limits[1],
        )
        # One colorbar beside both panels: they shrink alike, so round columns align.
        fig.colorbar(image, ax=[top, bottom], label=label, location="right")
        top.set_yticks(range(len(names)), names)
        rounds = np.arange(len(best))
        bottom.plot(rounds, [_finite(ind.fitness) for ind in best], "-o", label="best", ms=3)
        children = [ind for ind in history if ind.round > 0 and not ind.failed]
        bottom.scatter(
            [c.round for c in children],
            [c.fitness for c in children],
            s=10,
            color="grey",
            label="child",
        )
        bottom.legend(loc="lower right", fontsize="small")
    top.set_title("weights of the best individual after each round")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_xlabel("round (0 = initial population)")
    bottom.set_ylabel("fitness")
    write_figure(path, fig, dpi=100, bbox_inches="tight")
    return path


def log_tensorboard(history: Sequence[Individual], log_dir: str | Path) -> Path:
    """TensorBoard scalars of the search in ``log_dir``, step = round.

    ``evolve/best_fitness`` and ``evolve/weight/<name>``: of the best after each round
    (:func:`best_per_round`); ``evolve/child_fitness``: each round's child (rounds >= 1).
    Failed (``-inf``) fitness is left out.
    """
    from torch.utils.tensorboard import SummaryWriter

    log_dir = Path(log_dir)
    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        for step, best in enumerate(best_per_round(history)):
            if not best.failed:
                writer.add_scalar("evolve/best_fitness", best.fitness, step)
            for name, value in best.weights.items():
                writer.add_scalar(f"evolve/weight/{name}", value, step)
        for child in history:
            if child.round > 0 and not child.failed:
                writer.add_scalar("evolve/child_fitness", child.fitness, child.round)
    finally:
        writer.close()
    return log_dir


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.nan
