"""Launchers: a bench's runs (or evolve's individuals) as tasks of a pool of processes.

``--launcher local`` (:class:`LocalPool`): a :class:`concurrent.futures.ProcessPoolExecutor`
of ``--jobs`` workers (``spawn``: no CUDA or thread state is inherited). ``--launcher ray``
(:class:`cl_ssl.launch_ray.RayPool`): every task one Ray task on a cluster. Both have the
same four calls (``submit``, ``result``, ``cancel``, ``close``), so :func:`run_grid` and
``clssl evolve`` run on either.

Each (seed, method, strategy) run of the grid (:func:`cl_ssl.bench.plan_grid`) is one task.
A task runs the very code an inline bench runs (:func:`cl_ssl.bench.run_job`: the same run
directory, ``failure.json``, ``--resume`` reading back finished runs and continuing
interrupted ones from their checkpoint); the parent writes the summary from the outcomes,
in the grid's order, so it reads as the inline bench's.

Each local worker process gets ``torch.set_num_threads(threads)`` (``--threads-per-job``,
else the usable cores // ``--jobs``: side-by-side runs never oversubscribe the CPU) and,
when CUDA GPUs are visible and the device is not ``cpu``, one GPU of its own
(``CUDA_VISIBLE_DEVICES``, round robin over the visible ones, so jobs > GPUs share them).
Results equal the inline bench's when the thread count is the same (a CPU reduction's
order depends on it).

A process that dies (killed, out of memory) ends its task with :class:`TaskLost`: a local
pool is then broken, and the runs it took with it are recorded as failed (``failure.json``,
exit 1); ``clssl bench --resume`` finishes them. Ray first reruns the task
(``--max-retries``), which goes on from the run's last checkpoint.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cl_ssl.bench import Job, Outcome
    from cl_ssl.config import BenchConfig
    from cl_ssl.launch_ray import RayPool
    from cl_ssl.results import StrategyFailure, StrategyResult
    from cl_ssl.streams import SSLStream

_streams: dict[str, SSLStream] = {}  # per worker: each stream is built once, not once per run


class TaskLost(RuntimeError):
    """A task's process ended before the task did.

    Its text says how (``killed, or out of memory``); ``__cause__`` is the pool's own error.
    """


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under taskset or Slurm)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def visible_gpus(device: str) -> list[str]:
    """CUDA device ids a job may get: none on ``--device cpu`` or without CUDA.

    Ids as this process sees them (its own ``CUDA_VISIBLE_DEVICES`` list, when set), so a
    job's single id names the same GPU the parent would.
    """
    if device == "cpu":
        return []
    import torch

    count = torch.cuda.device_count()  # spawned workers inherit no CUDA state either way
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [g.strip() for g in given.split(",") if g.strip()] if given else []
    return (ids or [str(i) for i in range(count)])[:count]


class LocalPool:
    """``jobs`` spawned worker processes on this machine, each with its threads and GPU."""

    def __init__(self, jobs: int, threads: int | None, device: str) -> None:
        threads = threads or max(1, usable_cores() // jobs)
        context = multiprocessing.get_context("spawn")
        gpus = context.Queue()  # each worker takes one id as it starts
        visible = visible_gpus(device)
        for worker in range(jobs):
            gpus.put(visible[worker % len(visible)] if visible else None)
        self.executor = ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_start, initargs=(threads, gpus)
        )

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self.executor.submit(fn, *args)

    def result(self, task: Future) -> Any:
        """The task's value, or what it raised; :class:`TaskLost` when its process died."""
        try:
            return task.result()
        except BrokenProcessPool as error:
            raise TaskLost("killed, or out of memory") from error

    def cancel(self, tasks: list[Future]) -> None:
        """Tasks not started yet never start (their ``result`` raises ``CancelledError``)."""
        for task in tasks:
            task.cancel()

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


@contextmanager
def open_pool(config: BenchConfig, jobs: int) -> Iterator[LocalPool | RayPool | None]:
    """The pool of ``config.launcher`` (None: inline), closed on leaving.

    ``jobs`` is the local pool's size (the bench's ``--jobs``, evolve's ``--jobs``); a Ray
    cluster runs as many tasks at once as its resources hold.
    """
    if config.launcher == "inline":
        yield None
        return
    if config.launcher == "ray":
        from cl_ssl.launch_ray import RayPool

        pool: LocalPool | RayPool = RayPool(config)
    else:
        pool = LocalPool(max(1, jobs), config.threads_per_job, config.train.device)
    try:
        yield pool
    finally:
        pool.close()


def run_grid(
    grid: list[Job], resume: bool, pool: LocalPool | RayPool
) -> list[StrategyResult | StrategyFailure]:
    """Run ``grid``, each run a task of ``pool``; the outcomes in the grid's order.

    A full disk in one run cancels the runs not yet finished (``--resume`` finishes them),
    as the inline bench stops.
    """
    from cl_ssl.bench import failure_before_training, relabel

    tasks = [pool.submit(_work, job, resume) for job in grid]
    outcomes: list[StrategyResult | StrategyFailure] = []
    for job, task in zip(grid, tasks, strict=True):
        try:
            outcome, disk_full = pool.result(task)
        except CancelledError:
            continue
        except TaskLost as lost:
            why = f"its process ended before the run did ({lost})"
            failure = failure_before_training(job, lost.__cause__ or lost, why)
            outcomes.append(relabel(failure, job.label))
            continue
        outcomes.append(outcome)
        if disk_full:
            pool.cancel(tasks)  # the runs not done would fail the same way
    return outcomes


def _start(threads: int, gpus) -> None:
    """Local worker set-up, before any task: its CPU threads and its GPU."""
    gpu = gpus.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before CUDA starts in this process
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _work(job: Job, resume: bool) -> Outcome:
    """One run, in a worker: the inline bench's code path.

    A fresh bench's run folder exists before its task starts only when an earlier attempt
    of the task made it (a Ray worker died and Ray reran it): that attempt is resumed.
    """
    from cl_ssl.bench import run_job
    from cl_ssl.registry import streams

    config = job.config
    key = repr((config.stream, config.stream_options))
    if key not in _streams:
        _streams[key] = streams.get(config.stream)(config.stream_options)
    return run_job(_streams[key], job, resume or job.directory.exists())
