"""``--launcher ray``: every run a Ray task, on this machine or a cluster (``--address``).

Ray schedules each task where its resources are free: ``--cpus-per-run`` CPUs (also the
task's torch threads) and ``--gpus-per-run`` GPUs, a fraction allowed (0.25: four runs share
one GPU; Ray sets each task's ``CUDA_VISIBLE_DEVICES``). The runs write into the bench's
run directory, so ``--out`` must be on a filesystem every node sees.

A task whose worker dies (killed, out of memory, its node lost) is rerun up to
``--max-retries`` times (Ray's default, 3, when not given); the rerun goes on from the
run's last checkpoint (:func:`cl_ssl.launch._work`). A run that fails (an exception, a
non-finite loss) is not rerun: it is recorded (``failure.json``), as inline.

The workers' output stays in Ray's session logs (``/tmp/ray/session_latest/logs`` on each
node); each run's result or failure comes back to the bench, which prints the summary.
Ray is an optional dependency (``pip install 'cl-ssl[ray]'``), imported only here.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any

from cl_ssl.launch import TaskLost, usable_cores

if TYPE_CHECKING:
    from cl_ssl.config import BenchConfig

DEFAULT_RETRIES = 3


def require_ray() -> None:
    """Refuse ``--launcher ray`` without Ray installed, before anything runs.

    Raises:
        ValueError: One line naming the extra to install.
    """
    if importlib.util.find_spec("ray") is None:
        raise ValueError("--launcher ray needs Ray: pip install 'cl-ssl[ray]'")


class RayPool:
    """Tasks on a Ray cluster, with ``config``'s resources per task and retries.

    The cluster is this process's own Ray session when one is initialised (a script's, a
    test's), else the one at ``--address`` (joined, left running), else a Ray instance of
    this machine's cores, started for the bench and stopped after it.
    """

    def __init__(self, config: BenchConfig) -> None:
        require_ray()
        import ray

        self.started = not ray.is_initialized()
        if self.started:
            try:
                if config.address is None:  # "local": never join another user's cluster
                    ray.init(address="local", num_cpus=usable_cores(), log_to_driver=False)
                else:
                    ray.init(address=config.address, log_to_driver=False)
            except ConnectionError as error:
                why = str(error).rstrip(".")
                raise ValueError(
                    f"--address {config.address}: {why}: is the cluster up (`ray start --head` "
                    "on its first node)?"
                ) from None
        gpus = config.gpus_per_run
        if gpus is None:  # as --launcher local: a GPU per run when there are GPUs
            has_gpus = ray.cluster_resources().get("GPU", 0) > 0
            gpus = 1 if has_gpus and config.train.device != "cpu" else 0
        self.threads = config.cpus_per_run or 1
        retries = DEFAULT_RETRIES if config.max_retries is None else config.max_retries
        self.remote = ray.remote(_call).options(
            num_cpus=self.threads, num_gpus=gpus, max_retries=retries, retry_exceptions=False
        )

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.remote.remote(self.threads, fn, *args)

    def result(self, task: Any) -> Any:
        """The task's value, or the exception it raised.

        :class:`TaskLost` when its worker died more than ``--max-retries`` times,
        ``CancelledError`` once cancelled.
        """
        import ray

        try:
            return ray.get(task)
        except ray.exceptions.TaskCancelledError:
            raise CancelledError from None
        except ray.exceptions.RayTaskError as error:  # the task raised: raise that
            cause = getattr(error, "cause", None)
            raise (cause if isinstance(cause, BaseException) else error) from None
        except ray.exceptions.RayError as error:  # its worker or node is gone
            raise TaskLost(f"{type(error).__name__}: killed, out of memory or a node lost, "
                           "after every rerun") from error

    def cancel(self, tasks: list[Any]) -> None:
        """Tasks not finished stop (a running run is interrupted; ``--resume`` goes on)."""
        import ray

        done, _ = ray.wait(tasks, num_returns=len(tasks), timeout=0)
        for task in set(tasks) - set(done):
            ray.cancel(task)

    def close(self) -> None:
        """Stop the Ray instance this pool started (a joined cluster keeps running)."""
        import ray

        if self.started:
            ray.shutdown()


def _call(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a Ray worker, on ``threads`` torch threads (the task's CPUs)."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)  # for the processes the run starts
    torch.set_num_threads(threads)
    return fn(*args)
