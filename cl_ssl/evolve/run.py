"""``clssl evolve``: search a bench's loss weights, with fitness on validation data only.

Each individual is one short bench run of the user's configuration with the searched
weights set as ``--opt`` values (:mod:`cl_ssl.evolve.space`), on the stream's
*validation* splits (``--val-fraction``, 0.2 unless given; 0 is refused): the test splits
that ``clssl bench`` reports are never loaded. Its fitness, averaged over ``--seeds``:

- ``nmi`` (the paper's): k-means NMI of the final model's features on the union of the
  validation splits (all-classes protocol);
- ``knn``: kNN-20 accuracy on the same union;
- ``knn-stable``: that accuracy minus its forgetting (mean drop from each split's best),
  for a search that must not buy plasticity with forgetting.

The stream is built once; individual ``i`` trains into ``individuals/<i>/`` with the
bench's own run layout. The evaluation is reduced to what the fitness reads (all-classes
protocol; no linear probe; k-means only for ``nmi``; no checkpoints).

Outputs in the evolve directory: ``evolve.json`` (settings, for ``--resume``),
``state.json`` (the search, saved after every individual), ``history.csv``,
``weights.png`` (heatmap), ``tensorboard/`` and ``best.json`` with the winner's weights and
the exact ``clssl bench`` command that reruns it on the test splits.

Example:
    clssl evolve --rounds 8 --stream digits-periods --strategy lwf-ssl
    clssl evolve --resume runs/evolve-digits-periods-...  # after an interruption
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cl_ssl.atomic import write_text
from cl_ssl.config import BenchConfig, EvalConfig
from cl_ssl.evolve.outputs import log_tensorboard, plot_weight_heatmap, write_history_csv
from cl_ssl.evolve.search import Bounds, EvolutionarySearch, EvolveConfig, Individual, WeightSpace
from cl_ssl.evolve.space import weight_space
from cl_ssl.flags import setting
from cl_ssl.launch import TaskLost, open_pool

if TYPE_CHECKING:
    from cl_ssl.launch import LocalPool
    from cl_ssl.launch_ray import RayPool

FITNESS = ("nmi", "knn", "knn-stable")
SETTINGS_FILE, STATE_FILE = "evolve.json", "state.json"
DEFAULT_VAL_FRACTION = 0.2
# Bench flags that change no result (individuals never show progress bars): accepted with
# --resume, which refuses every other flag, as `clssl bench --resume` accepts them.
DISPLAY_FLAGS = ("--progress", "--no-progress")


@dataclass(frozen=True)
class EvolveSettings:
    """Everything an evolve run needs, saved as ``evolve.json``.

    Attributes:
        bench: The bench each individual runs (its ``strategy_options`` are the base the
            searched weights override; ``val_fraction`` > 0).
        bench_args: The user's ``clssl bench`` flags, to print the winner's command.
        search: Population, tournament, mutation, budget and seed.
        ranges: The searched weights and their ranges (``(low, high[, "log"])``).
        fitness: One of :data:`FITNESS`.
    """

    bench: BenchConfig
    bench_args: tuple[str, ...]
    search: EvolveConfig
    ranges: dict[str, Bounds]
    fitness: str = setting(
        "nmi",
        help="nmi (k-means NMI, the paper's), knn, or knn-stable (kNN minus its forgetting).",
    )

    def __post_init__(self) -> None:
        if self.fitness not in FITNESS:
            raise ValueError(f"--fitness must be one of {', '.join(FITNESS)}, got {self.fitness!r}")
        if not self.bench.stream_options.val_fraction > 0:
            raise ValueError(
                "clssl evolve measures fitness on validation data only: --val-fraction must be "
                f"> 0 (default {DEFAULT_VAL_FRACTION}), never the test splits"
            )


def make_settings(
    bench: BenchConfig,
    bench_args: list[str],
    search: EvolveConfig,
    fitness: str = "nmi",
    overrides: dict[str, Bounds] | None = None,
) -> EvolveSettings:
    """Settings for ``bench`` with the weight space its strategies declare (+ overrides)."""
    space = weight_space(bench.strategies, overrides, bench.train.method)
    return EvolveSettings(bench, tuple(bench_args), search, dict(space.ranges), fitness)


def fitness_evaluation(bench: BenchConfig, fitness: str) -> EvalConfig:
    """The bench's evaluation reduced to what ``fitness`` reads."""
    return replace(
        bench.evaluation,
        protocols=("all",),
        linear_probe=False,
        kmeans=fitness == "nmi",
        checkpoints=False,
    )


def fitness_of(tidy, fitness: str) -> float:
    """The fitness of one run's tidy metrics (one strategy, one seed)."""
    from cl_ssl.evaluation.continual import tidy_figures

    found = tidy_figures(tidy).set_index("metric")
    metric = "all_nmi" if fitness == "nmi" else "all_knn20"
    if metric not in found.index:
        raise RuntimeError(f"the run measured no {metric}: is the stream labeled?")
    row = found.loc[metric]
    final = row["final_union"] if not math.isnan(row["final_union"]) else row["final"]
    return float(final - row["forgetting"]) if fitness == "knn-stable" else float(final)


class BenchFitness:
    """``fitness(weights, id)``: train the bench with those weights, score the validation splits.

    The stream is built on first use and kept for every later individual.
    """

    def __init__(self, settings: EvolveSettings, directory: Path) -> None:
        self.settings = settings
        self.directory = directory
        self._stream = None

    def __call__(self, weights: dict[str, float], individual: int) -> float:
        from cl_ssl.bench import run_strategy
        from cl_ssl.registry import streams
        from cl_ssl.strategy import parse_spec, run_name

        bench = self.individual_bench(weights)
        if self._stream is None:
            self._stream = streams.get(bench.stream)(bench.stream_options)
        (run,) = parse_spec(bench.strategies)
        folder = self.directory / "individuals" / f"{individual:03d}"
        if folder.exists():
            shutil.rmtree(folder)  # an attempt cut short before its fitness was recorded
        scores = []
        for seed in bench.seeds:
            seeded = replace(bench, train=replace(bench.train, seed=seed))
            path = folder / run_name(run) / f"seed{seed}"
            result = run_strategy(self._stream, run, seeded, path)
            scores.append(fitness_of(result.metrics, self.settings.fitness))
        return sum(scores) / len(scores)

    def individual_bench(self, weights: dict[str, float]) -> BenchConfig:
        """The bench of one individual: the searched weights over the user's options."""
        bench = self.settings.bench
        options = {name: dict(values) for name, values in bench.strategy_options.items()}
        from cl_ssl.methods import mixture_names

        mixing = {name: dict(values) for name, values in bench.train.method_options.items()}
        methods = set(mixture_names(bench.train.method))
        for name, value in weights.items():
            owner, _, key = name.rpartition(".")
            into = mixing if owner in methods else options
            into.setdefault(owner, {})[key] = repr(float(value))
        return replace(
            bench,
            train=replace(bench.train, method_options=mixing),
            strategy_options=options,
            evaluation=fitness_evaluation(bench, self.settings.fitness),
            progress=False,
        )


def winner_command(settings: EvolveSettings, weights: dict[str, float]) -> str:
    """``clssl bench`` with the user's flags and the winning weights, on the test splits."""
    args, skip = [], False
    for arg in settings.bench_args:
        if skip:
            skip = False
            continue
        flag = arg.split("=", 1)[0]
        if flag in ("--val-fraction", "--run", "--run-name", "--overwrite", "--resume"):
            skip = "=" not in arg and flag not in ("--overwrite",)
            continue
        args.append(arg)
    from cl_ssl.methods import mixture_names

    methods = set(mixture_names(settings.bench.train.method))
    opts = [
        f"--{'method-opt' if name.rpartition('.')[0] in methods else 'opt'}={name}={value!r}"
        for name, value in weights.items()
    ]
    return shlex.join(["clssl", "bench", *args, *opts])


def save_settings(settings: EvolveSettings, directory: Path) -> None:
    """``evolve.json``: the settings, with the bench in ``bench.json``'s form."""
    from cl_ssl.run_config import bench_config_to_dict

    data = {
        "bench": bench_config_to_dict(settings.bench),
        "bench_args": list(settings.bench_args),
        "search": asdict(settings.search),
        "ranges": {k: list(v) for k, v in settings.ranges.items()},
        "fitness": settings.fitness,
    }
    write_text(directory / SETTINGS_FILE, json.dumps(data, indent=2, default=str), durable=True)


def load_settings(directory: Path) -> EvolveSettings:
    """The settings an evolve directory was started with."""
    from cl_ssl.run_config import bench_config_from_dict

    path = Path(directory) / SETTINGS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} has no {SETTINGS_FILE}: --resume needs a directory written by "
            "`clssl evolve`"
        )
    data = json.loads(path.read_text())
    bench = data["bench"]
    return EvolveSettings(
        bench=bench_config_from_dict(bench, Path(bench["out"]), bench["run_name"]),
        bench_args=tuple(data["bench_args"]),
        search=EvolveConfig(**data["search"]),
        ranges=dict(WeightSpace({k: tuple(v) for k, v in data["ranges"].items()}).ranges),
        fitness=data["fitness"],
    )


def evolve_directory(settings: EvolveSettings) -> Path:
    """``<out>/<run>`` (refused when it holds a search: resume it or pick another name)."""
    bench = settings.bench
    name = bench.run_name or f"evolve-{bench.stream}-{time.strftime('%Y%m%d-%H%M%S')}"
    directory = Path(bench.out) / name
    if (directory / STATE_FILE).exists() or (directory / SETTINGS_FILE).exists():
        raise FileExistsError(
            f"{directory} already holds an evolve run: finish it with `clssl evolve --resume "
            f"{directory}` or pass another --run"
        )
    if directory.is_dir() and any(directory.iterdir()):
        raise FileExistsError(
            f"{directory} is not empty: pass another --run (an evolve run never writes into "
            "other results)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def run_evolve(
    settings: EvolveSettings | None = None,
    resume: Path | None = None,
    on_individual=None,
) -> tuple[Path, EvolutionarySearch]:
    """Run (or, with ``resume``, finish) a search; write every output. Returns (dir, search)."""
    if resume is not None:
        directory = Path(resume)
        settings = load_settings(directory)
    else:
        if settings is None:
            raise ValueError("pass settings or resume")
        if settings.bench.launcher == "ray":  # refused before the directory is made
            from cl_ssl.launch_ray import require_ray

            require_ray()
        directory = evolve_directory(settings)
        save_settings(settings, directory)
    fitness = BenchFitness(settings, directory)
    state = directory / STATE_FILE

    def after(individual: Individual) -> None:
        write_outputs(settings, directory, search)
        if on_individual is not None:
            on_individual(individual)

    with open_pool(launcher_bench(settings), settings.search.jobs) as pool:
        evaluate_batch = None if pool is None else PooledFitness(pool, settings, directory)
        kwargs = {"on_individual": after, "evaluate_batch": evaluate_batch}
        if state.exists():
            search = EvolutionarySearch.resume(state, fitness, settings.search, **kwargs)
        else:
            space = WeightSpace(settings.ranges)
            search = EvolutionarySearch(space, settings.search, fitness, **kwargs)
        search.run(state_path=state)
    write_outputs(settings, directory, search)
    return directory, search


def launcher_bench(settings: EvolveSettings) -> BenchConfig:
    """The bench whose launcher evaluates the individuals: its ``--launcher`` and flags.

    ``--jobs`` > 1 without ``--launcher`` keeps its meaning from before there were
    launchers: local processes.
    """
    bench = settings.bench
    if bench.launcher == "inline" and settings.search.jobs > 1:
        return replace(bench, launcher="local")
    return bench


class WorkerDied(RuntimeError):
    """A process evaluating an individual died (killed, out of memory)."""


class PooledFitness:
    """``evaluate_batch``: each individual of a batch one task of a launcher's pool.

    The pool is ``--launcher local`` (``--jobs`` spawned processes, each with cores/jobs
    torch threads or ``--threads-per-job``, and one of the visible GPUs) or ``--launcher
    ray`` (a Ray task each, ``--cpus-per-run``, ``--gpus-per-run``): see
    :mod:`cl_ssl.launch`. A worker keeps its :class:`BenchFitness`, so its stream is built
    once. Results come back by position: the finishing order never matters.
    """

    def __init__(self, pool: LocalPool | RayPool, settings: EvolveSettings, directory: Path):
        self.pool, self.settings, self.directory = pool, settings, directory

    def __call__(self, batch: list[tuple[dict[str, float], int]]) -> list[float | BaseException]:
        tasks = [
            self.pool.submit(_evaluate, self.settings, self.directory, weights, individual)
            for weights, individual in batch
        ]
        results: list[float | BaseException] = []
        for task in tasks:
            try:
                results.append(self.pool.result(task))
            except TaskLost as lost:  # a local pool is broken: every later batch would fail
                raise WorkerDied(
                    f"an evolve worker process died ({lost}): out of memory? Finish with "
                    "`clssl evolve --resume DIR` (finished individuals are kept)"
                ) from lost
            except Exception as error:
                results.append(error)
        return results


_FITNESS: dict[Path, BenchFitness] = {}  # per worker process: one per evolve directory


def _evaluate(
    settings: EvolveSettings, directory: Path, weights: dict[str, float], individual: int
) -> float:
    """One individual's fitness, in a worker."""
    if directory not in _FITNESS:
        _FITNESS[directory] = BenchFitness(settings, directory)
    return _FITNESS[directory](weights, individual)


def write_outputs(settings: EvolveSettings, directory: Path, search: EvolutionarySearch) -> None:
    """history.csv, weights.png, tensorboard/ and best.json, from the search so far."""
    history = search.history
    write_history_csv(history, directory / "history.csv")
    space = WeightSpace(settings.ranges)
    plot_weight_heatmap(history, list(space.names), directory / "weights.png", space=space)
    tensorboard = directory / "tensorboard"
    if tensorboard.exists():
        shutil.rmtree(tensorboard)  # rewritten whole: one consistent view per save
    log_tensorboard(history, tensorboard)
    if not search.population:
        return
    best = search.best
    write_text(
        directory / "best.json",
        json.dumps(
            {
                "fitness": settings.fitness,
                "best": best.to_dict(),
                "rounds_done": search.rounds_done,
                "command": winner_command(settings, best.weights),
            },
            indent=2,
        ),
    )
