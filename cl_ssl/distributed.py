"""Data-parallel training under ``torchrun``: one process per device, losses over the global batch.

``torchrun --nproc_per_node N -m cl_ssl bench ...`` starts N copies of the bench; each
joins the process group here (NCCL on GPUs, gloo on CPUs; the rendezvous is torchrun's,
so ``--nnodes`` and ``--rdzv-endpoint`` give multi-node runs). Outside torchrun (no
``WORLD_SIZE``, or 1) every function is the single-process identity and nothing here is
imported by the training loop's hot path but :func:`gather`.

The contract, which the rest of cl-ssl relies on:

- ``--batch-size`` is the *global* batch: each rank trains B / N images per step
  (:class:`torch.utils.data.DistributedSampler`, reshuffled per epoch from the run's seed),
  and the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`.
- Every batch-level loss sees the global batch: the student's outputs are all-gathered
  *with gradient* (Lightly's ``gather``) before the SSL method and the plugins read them,
  and teacher outputs are gathered too. Every rank then computes the same global loss L;
  the gather's backward sums the N identical gradients of a rank's rows and DDP averages
  the parameter gradients, so each rank applies exactly dL/dtheta (NT-Xent, Barlow Twins,
  the relational and contrastive distillation terms, CaSSLe, PFR, PNR alike). Parameters
  outside the model (predictors of CaSSLe/PFR/PNR) see the same global loss on every rank,
  so they stay equal without communication.
- BatchNorm layers normalise each rank's own B / N rows (and track running statistics of
  them) unless ``--sync-bn`` (torch's SyncBatchNorm, CUDA only): a 2 x 128 step equals a
  1 x 256 step only with ``--sync-bn``; by default it equals one process whose BatchNorms
  normalise the two halves of the 256 images separately.
- Random streams: views are drawn from a per-rank stream during training; when an
  experience ends every rank takes rank 0's random state (:func:`sync_random_state`), so
  buffer updates and anything else drawn between experiences agree on every rank.
- Rank 0 alone evaluates and writes (metrics, TensorBoard, checkpoints, summaries); the
  others wait at :func:`barrier`.
- Bad input (a ``--batch-size`` that does not split over the processes, a bad option, a
  missing data root) is found before the group starts: rank 0 alone prints the one-line
  error and every rank exits 2 (torchrun then reports the failed processes, exit 1).

Example:
    >>> setup("auto")  # under torchrun: joins the group; otherwise nothing
    >>> z = gather(local_embeddings)  # [N * b, D], rank order, differentiable
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

TIMEOUT_ENV = "CLSSL_DIST_TIMEOUT_MIN"
DEFAULT_TIMEOUT_MIN = 180  # rank 0 evaluates for a while, the others wait at a barrier


def launched() -> bool:
    """Whether this process is one of several started by torchrun (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """Whether a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Processes in the group (1 outside torchrun)."""
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """The rank of this process (0 outside torchrun)."""
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """Whether this process evaluates, writes and prints (rank 0).

    Before the process group starts (an input error found up front), torchrun's ``RANK``
    tells, so that rank 0 alone prints the error.
    """
    if launched() and not active():
        return int(os.environ.get("RANK", "0")) == 0
    return rank() == 0


def planned_world_size() -> int:
    """Processes torchrun started (``WORLD_SIZE``), known before the group starts; else 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) if launched() else 1


def restarts() -> tuple[int, int]:
    """``(restarts so far, restarts allowed)`` of torchrun's ``--max-restarts``; (0, 0) without."""
    count = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    return count, int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0") or 0)


def local_rank() -> int:
    """The index of this process on its node (torchrun's ``LOCAL_RANK``): its GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: str) -> None:
    """Join torchrun's process group once: NCCL when training on CUDA, else gloo.

    ``device`` is ``--device`` (``auto``, ``cpu``, ``cuda``). No-op outside torchrun.
    """
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return
    on_cuda = device != "cpu" and torch.cuda.is_available()
    if on_cuda:
        torch.cuda.set_device(local_rank())
    timeout = timedelta(minutes=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_MIN)))
    backend = "nccl" if on_cuda else "gloo"
    count, _ = restarts()
    if count == 0 or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        dist.init_process_group(backend, timeout=timeout)
        return
    # A torchrun restart: the agent's store still holds the previous attempt's addresses, which
    # the new ranks may read and dial (dead ports: "Connection refused", pytorch#167288).
    # Keys of this attempt only.
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False, timeout=timeout
    )
    dist.init_process_group(
        backend,
        store=dist.PrefixStore(f"clssl/attempt{count}", store),
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        timeout=timeout,
    )


def teardown() -> None:
    """Leave the process group (end of the command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_of(device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA under torchrun."""
    if device.type == "cuda" and active():
        return torch.device("cuda", local_rank())
    return device


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if not active():
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[local_rank()])
    else:
        dist.barrier()


_GLOBAL_BATCHES = False  # inside training, where every rank runs the same steps


@contextmanager
def global_batches() -> Iterator[None]:
    """Within it, :func:`gather` gathers: training, where all ranks step together.

    Outside it (rank 0's evaluation, while the others wait) gathering is the identity.
    """
    global _GLOBAL_BATCHES
    before, _GLOBAL_BATCHES = _GLOBAL_BATCHES, True
    try:
        yield
    finally:
        _GLOBAL_BATCHES = before


def gathering() -> bool:
    """Whether :func:`gather` gathers here (torchrun, inside :func:`global_batches`)."""
    return _GLOBAL_BATCHES and active()


def gather(tensor: Tensor) -> Tensor:
    """Every rank's ``tensor`` concatenated along dim 0 in rank order, with gradient.

    Lightly's ``GatherLayer``: the backward sums the incoming gradients over ranks and keeps
    this rank's rows. The rows must have the same shape on every rank (the sampler pads).
    The identity outside training (:func:`global_batches`) and outside torchrun.
    """
    if not gathering():
        return tensor
    from lightly.utils.dist import gather as lightly_gather

    return torch.cat(lightly_gather(tensor.contiguous()), dim=0)


def gather_output(output: Any) -> Any:
    """An :class:`~cl_ssl.models.ssl_model.SSLOutput` with every field gathered (None kept)."""
    if not gathering():
        return output
    return type(output)(*(None if field is None else gather(field) for field in output))


def all_reduce_mean_(tensor: Tensor) -> Tensor:
    """Average ``tensor`` over ranks in place (e.g. gradients in the EWC importance pass)."""
    if active():
        dist.all_reduce(tensor)
        tensor.div_(world_size())
    return tensor


def average_buffers(module: torch.nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over ranks, in place.

    Each rank's running statistics follow its own rows; at an experience's end every rank
    takes their mean, so teachers, checkpoints and evaluation see one model.
    """
    if not active():
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            all_reduce_mean_(buffer.data)


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a run directory's name, a random state)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sync_random_state() -> None:
    """Every rank takes rank 0's torch (CPU and CUDA), NumPy and Python random states."""
    if not active():
        return
    cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() else None
    state = (torch.get_rng_state(), cuda, np.random.get_state(), random.getstate())
    torch_state, cuda_state, numpy_state, python_state = broadcast_object(state)
    torch.set_rng_state(torch_state)
    if cuda_state is not None:
        torch.cuda.set_rng_state(cuda_state)
    np.random.set_state(numpy_state)
    random.setstate(python_state)


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process); every rank calls it."""
    if not active():
        return [obj]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered
