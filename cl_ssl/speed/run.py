"""One process per row: the parent spawns ``python -m cl_ssl.speed --row NAME`` for each.

Isolation is the point: a row's peak RSS (``ru_maxrss``) is its own, not the maximum of
every row before it; imports, allocator caches and DataLoader workers of one row cannot
slow the next; and rows that do not train through Avalanche never import it. Rows run one
after another, never concurrently (two torch processes on the same cores slow each other
far more than 2x). The child prints one line ``SPEED_ROW <json>`` on stdout.

Example:
    >>> rows = run_rows(SpeedConfig(rows=("loop-batched", "naive")))
    >>> rows[1]["experience"], rows[1]["images_per_s"] > 0
    (1, True)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import torch

from cl_ssl.speed.config import LOOP_ROWS, PIPELINE_ROWS, SpeedConfig, row_data
from cl_ssl.speed.data import DataSource
from cl_ssl.speed.timing import (
    Stopwatch,
    children_private_mb,
    device_name,
    device_sync,
    peak_gpu_mb,
    peak_rss_mb,
    resolve_device,
)

MARKER = "SPEED_ROW "
ROW_TIMEOUT_S = 1800


def run_row(name: str, config: SpeedConfig) -> dict:
    """Run row ``name`` in this process; its timings, peak memory and settings as a dict."""
    from cl_ssl.speed.loops import ROWS

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    workers_mb: list[float | None] = []

    def sample_workers() -> None:  # at the last window's end, while workers are alive
        workers_mb.append(children_private_mb())

    watch = Stopwatch(
        config.warmup, config.windows, config.steps, device_sync(device), sample_workers
    )
    with DataSource(config) as source:
        if name in ROWS:
            extra = ROWS[name](config, source, device, watch)
        else:
            from cl_ssl.speed.strategy_rows import strategy_row

            extra = strategy_row(name, config, source, device, watch)
    return {
        "row": name,
        **watch.result(),
        **extra,
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": peak_gpu_mb(device),
        "workers_private_mb": workers_mb[0] if workers_mb else None,
        "threads": torch.get_num_threads(),
        "device": device_name(device),
        "pid": os.getpid(),
        "imported_avalanche": "avalanche" in sys.modules,
    }


def run_child(name: str, config: SpeedConfig) -> dict:
    """Row ``name`` in a fresh Python process; a failed row becomes ``{"row", "error"}``."""
    command = [sys.executable, "-m", "cl_ssl.speed", "--row", name, "--config", config.to_json()]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=ROW_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"row": name, "error": f"timed out after {ROW_TIMEOUT_S} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    return {"row": name, "error": lines[-1] if lines else f"exit status {done.returncode}"}


def check_rows(config: SpeedConfig) -> None:
    """Fail before anything runs on a row that is neither a built-in row nor a strategy spec."""
    names = config.strategy_rows()
    if not names:
        return
    from cl_ssl.registry import UnknownNameError, strategies
    from cl_ssl.strategy import check_options, parse_spec

    runs = []
    for name in names:
        try:
            parsed = parse_spec(row_data(name)[0])
        except UnknownNameError:
            fixed = ", ".join(LOOP_ROWS + PIPELINE_ROWS)
            raise ValueError(
                f"unknown row '{name}'; choose from: {fixed} or a strategy spec "
                f"({', '.join(strategies.names())}, A+B, naive@device, naive@loader)"
            ) from None
        if len(parsed) != 1:
            raise ValueError(f"row '{name}' names several runs: give each as its own row")
        runs += parsed
    check_options(runs, config.strategy_options)
    DataSource(config)  # a missing --data-root fails now, not in every child
    resolve_device(config.device)


def run_rows(config: SpeedConfig, log: Callable[[str], None] | None = None) -> list[dict]:
    """Every row of ``config`` in its own process, in order; ``log`` hears progress."""
    check_rows(config)
    rows = []
    for i, name in enumerate(config.rows, 1):
        if log:
            log(f"[{i}/{len(config.rows)}] {name} ...")
        start = time.perf_counter()
        rows.append(run_child(name, config))
        if log:
            status = rows[-1].get("error") or f"{rows[-1]['images_per_s']:.0f} images/s"
            log(f"[{i}/{len(config.rows)}] {name}: {status} ({time.perf_counter() - start:.0f} s)")
    return rows
