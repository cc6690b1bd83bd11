"""The timing protocol every row shares, and what a row reports.

A row calls :meth:`Stopwatch.tick` once after every training step (or batch, for the data
rows). The clock is read only at window boundaries: after the ``warmup``-th step, then
after every ``steps`` further steps. A window therefore spans ``steps`` complete
iterations *including* the loading of their batches (the loader is asked for step k+1's
batch after step k's tick). On CUDA the device is synchronised at boundaries only, so the
host can run ahead inside a window as it does in training.

images/s of a row = median over windows of (images in the window / window seconds);
s/step = median of (window seconds / steps).

Example:
    >>> watch = Stopwatch(warmup=1, windows=2, steps=3)
    >>> while not watch.tick(images=256):
    ...     train_one_step()
    >>> watch.result()["images_per_s"]
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import torch


class Stopwatch:
    """Window timings of a loop: ``warmup`` untimed steps, then ``windows`` x ``steps``.

    Args:
        warmup: Steps before the first window (at least 1: its end starts the clock).
        windows: Timing windows.
        steps: Steps per window.
        sync: Called before each clock reading (``torch.cuda.synchronize`` on CUDA).
        at_end: Called once after the last clock reading (e.g. to sample workers' memory
            while they are still alive), outside every window.
    """

    def __init__(
        self,
        warmup: int,
        windows: int,
        steps: int,
        sync: Callable[[], None] | None = None,
        at_end: Callable[[], None] | None = None,
    ) -> None:
        if warmup < 1 or windows < 1 or steps < 1:
            raise ValueError("warmup, windows and steps must all be at least 1")
        self.warmup, self.windows, self.steps = warmup, windows, steps
        self.sync = sync or (lambda: None)
        self.at_end = at_end or (lambda: None)
        self.step = 0
        self.begun: float | None = None  # set by begin(): the warm-up's start
        self.stamps: list[float] = []
        self.images: list[int] = []  # images per finished or running window
        self.total = warmup + windows * steps

    @property
    def timing(self) -> bool:
        """Whether the next step falls inside a window."""
        return self.warmup <= self.step < self.total

    def begin(self) -> None:
        """Mark the row's first step about to start (after model and data are built).

        ``warmup_s`` then spans this moment to the warm-up's end: the first steps' one-off
        costs (``torch.compile``, cuDNN autotuning, allocator growth) that the windows leave out.
        """
        self.sync()
        self.begun = time.perf_counter()

    def tick(self, images: int) -> bool:
        """Record one finished step of ``images`` images; True once the last window ends."""
        if self.step >= self.total:
            raise RuntimeError("the stopwatch has finished: stop the loop when tick is True")
        if self.timing:
            self.images[-1] += images
        self.step += 1
        if self.step >= self.warmup and (self.step - self.warmup) % self.steps == 0:
            self.sync()
            self.stamps.append(time.perf_counter())
            if self.step < self.total:
                self.images.append(0)
            else:
                self.at_end()
        return self.step == self.total

    def seconds(self) -> list[float]:
        """Duration of every finished window."""
        return [b - a for a, b in pairwise(self.stamps)]

    def result(self) -> dict:
        """Median images/s and s/step over windows, per-window rates, images per step."""
        seconds = self.seconds()
        if len(seconds) != self.windows:
            raise RuntimeError(f"{len(seconds)} of {self.windows} windows finished")
        rates = [n / s for n, s in zip(self.images, seconds, strict=True)]
        return {
            "images_per_s": statistics.median(rates),
            "s_per_step": statistics.median(s / self.steps for s in seconds),
            "images_per_step": sum(self.images) / (self.windows * self.steps),
            "window_images_per_s": rates,
            "warmup_s": None if self.begun is None else self.stamps[0] - self.begun,
        }


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error.

    The same rule as :func:`cl_ssl.strategy_run.resolve_device`, without importing
    Avalanche: rows that do not train through it should not pay its import or memory.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA GPU is visible: use --device cpu or auto")
    return torch.device(name)


def device_sync(device: torch.device) -> Callable[[], None]:
    """What to call before reading the clock on ``device``."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (``VmHWM`` on Linux).

    Not ``ru_maxrss``: Linux folds the parent's resident size into the child's
    ``ru_maxrss`` across fork + exec, so a row started by a 1 GB parent (a test runner)
    would report at least 1 GB. ``VmHWM`` belongs to the row's own address space.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 / 2**20 if platform.system() == "Darwin" else 1 / 1024  # bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def peak_gpu_mb(device: torch.device) -> float | None:
    """Peak memory torch's allocator handed out on ``device`` in MB; None off CUDA.

    ``torch.cuda.max_memory_allocated``: tensors only, not the allocator's cached blocks or
    the CUDA context, so it is what the row needs, not what ``nvidia-smi`` shows.
    """
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def children_private_mb() -> float | None:
    """Memory private to this process's live children (loader workers) in MB, now.

    Private pages only: forked workers share the parent's pages copy-on-write, and their
    resident size would count those again. None without children or without ``/proc``.
    """
    me, total, found = str(os.getpid()), 0, False
    try:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if stat.read_text().rsplit(")", 1)[1].split()[1] != me:  # field 4: ppid
                    continue
                rollup = (stat.parent / "smaps_rollup").read_text().splitlines()
            except (OSError, IndexError):
                continue  # exited meanwhile, or not ours to read
            found = True
            total += sum(int(ln.split()[1]) for ln in rollup if ln.startswith("Private_"))
    except OSError:
        return None
    return total / 1024 if found else None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else the platform's), with its core count."""
    name = ""
    try:
        with open("/proc/cpuinfo") as info:
            name = next((ln.split(":", 1)[1].strip() for ln in info if "model name" in ln), "")
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def malloc_name() -> str:
    """The C allocator this process runs on: ``tcmalloc``, ``jemalloc`` or ``glibc``.

    A preloaded one (``LD_PRELOAD``) is found in ``/proc/self/maps`` (Linux).

    It matters on the CPU: glibc returns the large activation buffers of every step to the
    kernel and faults them back in (~100k page faults per step here), which a caching
    allocator avoids (docs/performance.md).
    """
    try:
        with open("/proc/self/maps") as maps:
            text = maps.read()
    except OSError:
        return "unknown"
    return next((name for name in ("tcmalloc", "jemalloc") if f"lib{name}" in text), "glibc")


def device_name(device: torch.device) -> str:
    """``cpu``, or ``cuda (NVIDIA H100 80GB HBM3)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
