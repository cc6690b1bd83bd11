"""``--launcher local``: a bench's runs in their own processes, ``--jobs`` at a time.

Each (seed, method, strategy) run of the grid (:func:`cl_ssl.bench.plan_grid`) is one task
of a :class:`concurrent.futures.ProcessPoolExecutor` (``spawn``: no CUDA or thread state is
inherited). A task runs the very code an inline bench runs (:func:`cl_ssl.bench.run_job`:
the same run directory, ``failure.json``, ``--resume`` reading back finished runs and
continuing interrupted ones from their checkpoint); the parent writes the summary from the
outcomes, in the grid's order, so it reads as the inline bench's.

Each worker process gets ``torch.set_num_threads(threads)`` (``--threads-per-job``, else
the usable cores // ``--jobs``: side-by-side runs never oversubscribe the CPU) and, when
CUDA GPUs are visible and the device is not ``cpu``, one GPU of its own
(``CUDA_VISIBLE_DEVICES``, round robin over the visible ones, so jobs > GPUs share them).
Results equal the inline bench's when the thread count is the same (a CPU reduction's
order depends on it).

A process that dies (killed, out of memory) breaks the pool: the runs it took with it are
recorded as failed (``failure.json``, exit 1) and ``clssl bench --resume`` finishes them.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cl_ssl.bench import Job, Outcome
    from cl_ssl.results import StrategyFailure, StrategyResult
    from cl_ssl.streams import SSLStream

_streams: dict[str, SSLStream] = {}  # per worker: each stream is built once, not once per run


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


def run_local(
    grid: list[Job], resume: bool, jobs: int, threads: int | None
) -> list[StrategyResult | StrategyFailure]:
    """Run ``grid`` in ``jobs`` worker processes; the outcomes in the grid's order.

    A full disk in one run cancels the runs not yet started (``--resume`` starts them),
    as the inline bench stops.
    """
    from cl_ssl.bench import failure_before_training, relabel

    threads = threads or max(1, usable_cores() // jobs)
    jobs = max(1, min(jobs, len(grid)))  # no idle worker processes
    context = multiprocessing.get_context("spawn")
    gpus = context.Queue()
    visible = visible_gpus(grid[0].config.train.device) if grid else []
    for worker in range(jobs):
        gpus.put(visible[worker % len(visible)] if visible else None)
    outcomes: list[StrategyResult | StrategyFailure] = []
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=context, initializer=_start, initargs=(threads, gpus)
    ) as pool:
        futures: list[Future[Outcome]] = [pool.submit(_work, job, resume) for job in grid]
        for job, future in zip(grid, futures, strict=True):
            if future.cancelled():
                continue
            try:
                outcome, disk_full = future.result()
            except BrokenProcessPool as error:
                why = "its process ended before the run did (killed, or out of memory)"
                outcomes.append(relabel(failure_before_training(job, error, why), job.label))
                continue
            outcomes.append(outcome)
            if disk_full:
                for later in futures:
                    later.cancel()  # the runs not started would fail the same way
    return outcomes


def _start(threads: int, gpus) -> None:
    """Worker set-up, before any run: its CPU threads and its GPU."""
    gpu = gpus.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before CUDA starts in this process
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _work(job: Job, resume: bool) -> Outcome:
    """One run, in a worker: the inline bench's code path."""
    from cl_ssl.bench import run_job
    from cl_ssl.registry import streams

    config = job.config
    key = repr((config.stream, config.stream_options))
    if key not in _streams:
        _streams[key] = streams.get(config.stream)(config.stream_options)
    return run_job(_streams[key], job, resume)
