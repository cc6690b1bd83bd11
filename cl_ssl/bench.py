"""Run strategies on one stream, for one or more seeds and methods, and keep every result.

For each seed, method and strategy run of a :class:`BenchConfig` (seed-major, so the first
seed's full comparison is on disk before the second starts; :func:`plan_grid`), a
:class:`~cl_ssl.strategy_run.StrategyRun` rebuilds the model from that seed, trains it
experience by experience with the strategy's plugins, evaluates on every experience's test
(or validation) split after each one (and once before training: the FWT baseline), and
writes ``<out>/<run>/<strategy>/seed<s>/`` (layout in :mod:`cl_ssl.outputs`): the run's
configuration, TensorBoard events, tidy ``metrics.csv``, a full-state checkpoint after
every experience and ``results.json``.

The bench directory gets ``bench.json`` (the configuration, for ``--resume``),
``summary.md``/``summary.csv`` (one row per strategy, mean ± std over seeds, ranked by the
final all-classes accuracy), ``summary_stats.csv`` and ``plots/``. Data splits and class
order come from ``--split-seed`` and stay fixed across training seeds, so the spread over
seeds is training variance. A grid of several methods (``--method simclr,byol``) puts each
method's runs under ``<strategy>/<method>/seed<s>/`` and shows the method as a column.

The runs go one after another in this process (``--launcher inline``), each in a process
of its own, ``--jobs`` at a time (``--launcher local``, :mod:`cl_ssl.launch`), or each a
task on a Ray cluster (``--launcher ray``, :mod:`cl_ssl.launch_ray`): the same per-run code
(:func:`run_job`), directories, summary, failures and ``--resume`` every way.

Never losing work:

- a strategy that fails (an exception, a non-finite loss) is recorded with where it stopped
  (``failure.json``, the summary); its last good checkpoint stays and the other strategies
  still run; :attr:`BenchResult.ok` is False (``clssl bench`` exits 1);
- a full disk (:class:`cl_ssl.atomic.DiskFull`) fails its run the same way but stops the
  bench: the runs after it would only fail too; the records it cannot write are skipped;
- ``resume=True`` finishes an interrupted bench: finished runs are read back, the others go
  on from their last checkpoint (or start again when they have none); with
  ``--checkpoint-every``, from the newer in-experience one (:mod:`cl_ssl.interim`).

Under torchrun (``torchrun --nproc_per_node N -m cl_ssl bench ...``, :mod:`cl_ssl.distributed`)
every rank runs this loop on its shard and rank 0 alone writes. A non-finite loss, which
every rank sees at the same step (the loss is the global batch's), fails one strategy as
above; any other error stops every rank (torchrun ends the others with that rank's
message), and ``--resume`` under torchrun goes on from the last checkpoints, as does a
restart by ``torchrun --max-restarts`` of the same command line (:func:`restarted`).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from cl_ssl import distributed
from cl_ssl.atomic import is_disk_full, unless_disk_full
from cl_ssl.checkpoint import load_training_state
from cl_ssl.config import BenchConfig
from cl_ssl.interim import WITHIN_FILE
from cl_ssl.launch import open_pool, run_grid
from cl_ssl.methods import parse_method
from cl_ssl.outputs import (
    BENCH_FILE,
    FAILURE_FILE,
    check_run_directory,
    latest_checkpoint,
    load_finished,
    make_run_directory,
    write_failure,
    write_json,
    write_summary,
)
from cl_ssl.registry import streams
from cl_ssl.reporting.plots import write_plots
from cl_ssl.reporting.summary import method_label
from cl_ssl.results import BenchResult, StrategyFailure, StrategyResult
from cl_ssl.run_config import bench_config_to_dict
from cl_ssl.run_lock import holding
from cl_ssl.strategy import check_options, parse_spec, run_name
from cl_ssl.strategy_run import (  # noqa: F401  (build_model, make_optimizer: public API)
    StrategyFailed,
    StrategyRun,
    build_model,
    local_batch_size,
    make_optimizer,
    purge_step,
    resolve_device,
)
from cl_ssl.streams import SSLStream, StreamOptions
from cl_ssl.template import NonFiniteLoss

__all__ = [
    "BenchResult",
    "StrategyResult",
    "build_model",
    "make_optimizer",
    "resolve_device",
    "run_bench",
    "run_strategy",
]


def run_strategy(
    stream: SSLStream,
    run: tuple[str, ...],
    config: BenchConfig,
    directory: Path,
    resume: bool = False,
) -> StrategyResult:
    """Train and evaluate one (composed) strategy over the whole stream.

    With ``resume``, a finished run is read back and an interrupted one goes on from its
    last checkpoint; a run without one starts again in an emptied directory.

    Raises:
        StrategyFailed: Training or evaluation raised; the failure is on disk.
    """
    if resume:
        finished = load_finished(directory, run_name(run), config.train.seed)
        if finished is not None:
            return finished
        checkpoint = latest_checkpoint(directory) if config.evaluation.checkpoints else None
        state, done = (None, -1) if checkpoint is None else _training_state(checkpoint)
        within = _within_state(directory, config, done)
        if state is None and within is None and directory.exists() and distributed.is_main():
            shutil.rmtree(directory)  # nothing to go on from: never mix two attempts' rows
        if state is not None or within is not None:
            if distributed.is_main():
                (directory / FAILURE_FILE).unlink(missing_ok=True)
            latest = within if within is not None else state
            strategy_run = StrategyRun(stream, run, config, directory, purge_step(latest))
            if state is not None:
                strategy_run.restore(state, done)
            if within is not None:  # inside experience done + 1
                strategy_run.resume_within(within)
            return strategy_run.train(list(stream.benchmark.train_stream)[done + 1 :])
    strategy_run = StrategyRun(stream, run, config, directory)
    strategy_run.evaluate(-1)
    return strategy_run.train(stream.benchmark.train_stream)


def _training_state(checkpoint: Path) -> tuple[dict, int]:
    """``exp<k>.pt``'s training state and k."""
    state, info, _ = load_training_state(checkpoint)
    return state, info.experience


def _within_state(directory: Path, config: BenchConfig, done: int) -> dict | None:
    """The in-experience state (:mod:`cl_ssl.interim`) to go on from, after experience ``done``.

    None without ``--checkpoint-every``, without ``checkpoints/within.pt``, or when it is of
    an experience already checkpointed (killed between ``exp<k>.pt`` and its removal).
    """
    path = directory / "checkpoints" / WITHIN_FILE
    if config.evaluation.checkpoint_every is None or not path.is_file():
        return None
    state, info, _ = load_training_state(path)
    return state if info.experience == done + 1 and "within" in state else None


def run_bench(config: BenchConfig, resume: bool = False) -> BenchResult:
    """Run every strategy of ``config`` for every seed and method; write the directory and summary.

    Args:
        config: The bench. With ``resume``, ``config.out / config.run_name`` is the run to
            finish (its ``bench.json`` must match ``config``: see
            :func:`cl_ssl.run_config.load_bench_config`).
        resume: Finish an interrupted bench instead of starting one.
    """
    runs = parse_spec(config.strategies)  # fail on a bad name or option before loading data
    check_options(runs, config.strategy_options)
    for method in config.methods:  # a bad name or --method-opt, now
        parse_method(method, method_options(config.train.method_options, method))
    stream_factory = streams.get(config.stream)
    resolve_device(config.train.device)
    # Under torchrun every input check runs before the group starts: a refused bench exits
    # on every rank with rank 0's one line (cl_ssl.cli.bench), no rank left waiting.
    local_batch_size(config.train.batch_size, distributed.planned_world_size())
    if config.launcher != "inline" and distributed.launched():
        raise ValueError(
            f"--launcher {config.launcher} starts its own processes: run it without torchrun "
            "(or drop --launcher under torchrun)"
        )
    if config.launcher == "ray":
        from cl_ssl.launch_ray import require_ray

        require_ray()
    with ExitStack() as lock:  # rank 0 holds the run directory's lock until the bench ends
        return _run_bench(config, resume or restarted(config), runs, stream_factory, lock)


def _run_bench(
    config: BenchConfig,
    resume: bool,
    runs: list[tuple[str, ...]],
    stream_factory: Callable[[StreamOptions], SSLStream],
    lock: ExitStack,
) -> BenchResult:
    """:func:`run_bench` once its inputs are checked; ``lock`` takes the directory's lock."""
    if resume:
        directory = Path(config.out) / str(config.run_name)
        if not (directory / BENCH_FILE).is_file():
            raise FileNotFoundError(
                f"{directory} has no {BENCH_FILE}: --resume needs a run directory written by "
                "`clssl bench`"
            )
        if distributed.is_main():  # refused up front while another bench writes it
            lock.enter_context(holding(directory))
    elif config.run_name:
        check_run_directory(Path(config.out) / config.run_name, config.overwrite)
    # The stream refuses bad stream options (a missing data root, ...): before anything is
    # created on disk, so a refused bench leaves no empty run directory behind.
    stream = stream_factory(config.stream_options)
    distributed.setup(config.train.device)  # under torchrun: join the group
    size = len(config.seeds) * len(config.methods) * len(runs)
    # The pool first (a Ray cluster that cannot be reached is refused with nothing written).
    with open_pool(config, min(config.jobs, size)) as pool:
        if not resume and distributed.is_main():
            directory = make_run_directory(
                config.out, config.run_name, config.stream, config.overwrite
            )
            lock.enter_context(holding(directory))
        # The name (a time stamp by default) is rank 0's; only rank 0 writes into it.
        directory = distributed.broadcast_object(None if not distributed.is_main() else directory)
        named = replace(config, out=directory.parent, run_name=directory.name)
        if distributed.is_main():
            write_json(directory / BENCH_FILE, bench_config_to_dict(named), durable=True)
        grid = plan_grid(named, runs, directory)
        if pool is None:
            outcomes = _run_inline(stream, grid, resume)
        else:
            outcomes = run_grid(grid, resume, pool)
    results = [o for o in outcomes if isinstance(o, StrategyResult)]
    failures = [o for o in outcomes if isinstance(o, StrategyFailure)]
    bench = BenchResult(directory, results, failures)
    if distributed.is_main():
        with unless_disk_full():  # the failures reach stderr all the same
            write_summary(bench, stream.name, stream.eval_split)
            if results:
                write_plots(bench.tidy, directory / "plots")
    distributed.barrier()
    return bench


def restarted(config: BenchConfig) -> bool:
    """Whether torchrun restarted this command (``--max-restarts``) after its run began.

    A restart is the same command line, not ``--resume``: it goes on from the run's
    checkpoints (``exp<k>.pt``, and ``within.pt`` with ``--checkpoint-every``) as ``--resume``
    would. The run must be named: refused up front when restarts are allowed without
    ``--run-name`` (a restart would start a new, time-stamped run).
    """
    count, allowed = distributed.restarts()
    if allowed and not config.run_name:
        raise ValueError(
            "torchrun --max-restarts runs this command again after a failure: give "
            "--run-name so the restart goes on with its run"
        )
    named = Path(config.out) / str(config.run_name)
    return count > 0 and (named / BENCH_FILE).is_file()


@dataclass(frozen=True)
class Job:
    """One run of a bench's grid: a (composed) strategy, a seed and a method.

    Attributes:
        run: The strategy's plugin names (``("lwf-ssl", "replay")``).
        config: The bench with this run's seed, method and method options in ``train``.
        directory: ``<run>/<strategy>/seed<s>``, or ``<run>/<strategy>/<method>/seed<s>`` in
            a grid of several methods.
        label: Its name in tables and failures: the strategy, ``strategy [method]`` in a
            grid of several methods.
    """

    run: tuple[str, ...]
    config: BenchConfig
    directory: Path
    label: str


def method_options(options: dict[str, dict[str, str]], method: str) -> dict[str, dict[str, str]]:
    """The ``--method-opt`` options of ``method``'s own parts (``simclr`` of ``simclr+byol``)."""
    return {k: v for k, v in options.items() if k in method.split("+")}


def plan_grid(config: BenchConfig, runs: list[tuple[str, ...]], directory: Path) -> list[Job]:
    """Every (seed, method, strategy) run, seed-major: the first seed's comparison comes first.

    One method keeps the layout of a plain bench (``<strategy>/seed<s>``); several put each
    method's runs one level down (``<strategy>/<method>/seed<s>``) and label their rows
    ``strategy [method]`` (:func:`cl_ssl.reporting.summary.method_label`).
    """
    several = len(config.methods) > 1
    grid = []
    for seed, method, run in itertools.product(config.seeds, config.methods, runs):
        train = replace(
            config.train,
            seed=seed,
            method=method,
            method_options=method_options(config.train.method_options, method),
        )
        path = directory / run_name(run)
        path = (path / method if several else path) / f"seed{seed}"
        label = method_label(run_name(run), method) if several else run_name(run)
        grid.append(Job(run, replace(config, train=train), path, label))
    return grid


Outcome = tuple[StrategyResult | StrategyFailure, bool]
"""A run's result or failure, and whether the disk filled up (the bench then stops)."""


def run_job(stream: SSLStream, job: Job, resume: bool) -> Outcome:
    """One run of the grid, its failure caught and recorded (``failure.json``).

    Under torchrun an error other than a non-finite loss is raised instead: it may be this
    rank's alone, and the others would wait for it forever.
    """
    try:
        result = run_strategy(stream, job.run, job.config, job.directory, resume=resume)
        return relabel(result, job.label), False
    except StrategyFailed as failed:
        if distributed.active() and not isinstance(failed.__cause__, NonFiniteLoss):
            raise
        return relabel(failed.failure, job.label), is_disk_full(failed.__cause__)
    except Exception as error:  # building the run or reading its checkpoint
        if distributed.active():
            raise
        return relabel(failure_before_training(job, error), job.label), is_disk_full(error)


def relabel(
    outcome: StrategyResult | StrategyFailure, label: str
) -> StrategyResult | StrategyFailure:
    """``outcome`` named ``label`` (its rows too); the files on disk keep the strategy's name."""
    if outcome.name == label:
        return outcome
    if isinstance(outcome, StrategyFailure):
        return replace(outcome, name=label)
    outcome.name = label
    outcome.metrics = outcome.metrics.assign(strategy=label)
    return outcome


def _run_inline(
    stream: SSLStream, grid: list[Job], resume: bool
) -> list[StrategyResult | StrategyFailure]:
    outcomes = []
    for job in grid:
        outcome, disk_full = run_job(stream, job, resume)
        outcomes.append(outcome)
        if disk_full:
            break  # the runs after it would fail the same way; --resume starts them
    return outcomes


def failure_before_training(job: Job, error: BaseException, message: str = "") -> StrategyFailure:
    """The record (``failure.json``) of a run that failed outside its training loop."""
    if not message:
        text = str(error).strip()
        message = text.splitlines()[0] if text else ""
    failure = StrategyFailure(
        run_name(job.run),
        job.config.train.seed,
        -1,
        0,
        0,
        type(error).__name__,
        message,
        job.directory,
    )
    with unless_disk_full():
        write_failure(failure)
    return failure
