"""The run directory: what a bench writes, how it refuses to clobber, and what it reads back.

Layout of ``<out>/<run>/``:

- ``bench.json``: the bench's configuration (``clssl bench --resume`` reads it),
- ``<strategy>/seed<s>/``: ``config.json`` (written before training), ``metrics.csv``
  (tidy rows, rewritten after every experience), ``checkpoints/exp<k>.pt`` (encoder and
  full training state; ``checkpoints/within.pt`` inside an experience with
  ``--checkpoint-every``), TensorBoard events, and when the run ends either ``results.json``
  (finished) or ``failure.json`` (stopped with an error, see :class:`StrategyFailure`),
- ``<strategy>/<method>/seed<s>/``: the same, in a grid of several methods (one method keeps
  ``<strategy>/seed<s>/``),
- ``summary.md``/``summary.csv``/``summary_stats.csv``, ``failures.json`` and ``plots/``,
- ``.bench.lock``: held by the bench writing the directory (:mod:`cl_ssl.run_lock`), so a
  second bench, ``--resume`` or ``--overwrite`` is refused while it runs.

Every file is written to ``<name>.partial`` and renamed (:func:`cl_ssl.atomic.atomic_write`),
so a reader (or a resumed run) never sees half a file and a failed write leaves the previous
one. Checkpoints, ``bench.json``, ``config.json`` and ``results.json`` (what ``--resume``
trusts) are also fsynced, file and folder, so they survive a lost machine; the summaries,
``metrics.csv`` (rebuilt from the checkpoint on resume) and plots are not. A full disk
(``ENOSPC``) is :class:`cl_ssl.atomic.DiskFull`: the run fails naming the file, its size and
the space free, no ``.partial`` stays, and ``--resume`` goes on once space is freed.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from cl_ssl.atomic import write_csv, write_text
from cl_ssl.evaluation.continual import tidy_figures, tidy_matrix
from cl_ssl.reporting.summary import summary_stats
from cl_ssl.reporting.tables import TIDY_COLUMNS
from cl_ssl.results import BenchResult, StrategyFailure, StrategyResult
from cl_ssl.run_lock import check_not_in_use

BENCH_FILE = "bench.json"
RESULTS_FILE = "results.json"
FAILURE_FILE = "failure.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT = re.compile(r"exp(?P<k>\d+)\.pt$")


def write_json(path: Path, payload: dict, durable: bool = False) -> None:
    """``payload`` as indented JSON, atomically (and fsynced when ``durable``)."""
    write_text(path, json.dumps(payload, indent=2, default=str), durable=durable)


def write_metrics(rows: list[dict], directory: Path) -> None:
    """The tidy rows so far as ``metrics.csv``, atomically."""
    write_csv(directory / METRICS_FILE, pd.DataFrame(rows, columns=TIDY_COLUMNS), index=False)


def write_results(result: StrategyResult, config: dict, extra: dict[str, Any]) -> pd.DataFrame:
    """``results.json`` of a finished (strategy, seed) run; returns its figures table."""
    figures = tidy_figures(result.metrics)
    matrices = {}
    for metric in result.metric_names:
        R, baseline = tidy_matrix(result.metrics, metric)
        matrices[metric] = {
            "R": _json_floats(R),
            "untrained": None if baseline is None else _json_floats(baseline),
        }
    payload = {
        **config,
        **extra,
        "train_seconds": result.train_seconds,
        "eval_seconds": result.eval_seconds,
        "representation_eval_seconds": result.representation_seconds,
        "images_seen": result.images_seen,
        "images_per_second": result.images_per_second,
        "steps": result.steps,
        "images_per_step": result.images_per_step,
        "ms_per_step": result.ms_per_step,
        "data_wait_seconds": result.data_wait_seconds,
        "data_wait_pct": result.data_wait_pct,
        "matrices": matrices,
        "figures": {
            row["metric"]: {k: _json_float(v) for k, v in row.items() if k != "metric"}
            for row in figures.to_dict("records")
        },
    }
    (result.directory / FAILURE_FILE).unlink(missing_ok=True)  # a retried run that finished
    write_json(result.directory / RESULTS_FILE, payload, durable=True)
    return figures


def load_finished(directory: Path, name: str, seed: int) -> StrategyResult | None:
    """The result of a run that finished (``results.json`` and ``metrics.csv``), else None."""
    results = directory / RESULTS_FILE
    if not results.is_file() or not (directory / METRICS_FILE).is_file():
        return None
    payload = json.loads(results.read_text())
    steps = int(payload.get("steps") or 0)
    images = payload.get("images_seen")
    if images is None:  # results written before images_seen was kept
        images = round((payload.get("images_per_step") or 0) * steps)
    return StrategyResult(
        name,
        pd.read_csv(directory / METRICS_FILE),
        float(payload["train_seconds"]),
        float(payload["eval_seconds"]),
        int(images),
        directory,
        float(payload.get("representation_eval_seconds") or 0.0),
        steps,
        seed,
        float(payload.get("data_wait_seconds") or 0.0),
    )


def latest_checkpoint(directory: Path) -> Path | None:
    """``checkpoints/exp<k>.pt`` with the largest k in a strategy run directory, or None."""
    found = [
        (int(m["k"]), path)
        for path in (directory / "checkpoints").glob("exp*.pt")
        if (m := CHECKPOINT.search(path.name))
    ]
    return max(found)[1] if found else None


def write_failure(failure: StrategyFailure) -> None:
    """``failure.json`` in the failed run's directory."""
    failure.directory.mkdir(parents=True, exist_ok=True)
    write_json(failure.directory / FAILURE_FILE, failure.to_dict())


def check_run_directory(directory: Path, overwrite: bool) -> None:
    """Refuse a run directory with results (unless ``overwrite``) or a live bench's.

    A directory that another bench is writing (:mod:`cl_ssl.run_lock`) is refused even with
    ``overwrite``, before anything is built.
    """
    if directory.exists() and any(directory.rglob(METRICS_FILE)) and not overwrite:
        raise ValueError(
            f"{directory} already holds results: pass --resume {directory} to finish it, "
            "--overwrite to replace it, or --run NAME for a new run"
        )
    if overwrite and directory.exists():
        check_not_in_use(directory)  # never delete a run a live bench is writing


def make_run_directory(out: Path, run_name: str | None, stream: str, overwrite: bool) -> Path:
    """The run's directory, created now: emptied with ``overwrite``, unique when unnamed.

    An unnamed run gets ``<stream>-<time>``, with ``-2``, ``-3``, ... when that exists
    (two benches started in the same second never share a folder: ``mkdir`` is atomic).
    """
    out = Path(out)
    if run_name:
        directory = out / run_name
        check_run_directory(directory, overwrite)
        if overwrite and directory.exists():
            shutil.rmtree(directory)  # replace, never mix old and new results
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    out.mkdir(parents=True, exist_ok=True)
    base = f"{stream}-{datetime.now():%Y%m%d-%H%M%S}"
    for n in itertools.count(1):
        directory = out / (base if n == 1 else f"{base}-{n}")
        try:
            directory.mkdir()
            return directory
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def write_summary(bench: BenchResult, stream_name: str, eval_split: str) -> None:
    """``summary.md`` (with the protocol named), ``summary.csv``, ``summary_stats.csv``.

    Failed runs are listed under the table, with where they stopped and why, and in
    ``failures.json``.
    """
    directory = bench.directory
    write_json(directory / "failures.json", {"failures": [f.to_dict() for f in bench.failures]})
    lines = []
    if bench.strategies:
        write_csv(directory / "summary.csv", bench.summary(), index=False)
        write_csv(
            directory / "summary_stats.csv", summary_stats(bench.tidy, bench.timings), index=False
        )
        seeds = sorted({r.seed for r in bench.strategies})
        lines += [
            f"Stream `{stream_name}`, evaluated on the {eval_split} splits; seeds "
            f"{', '.join(map(str, seeds))} (mean ± std over seeds). Accuracies use the "
            "all-classes protocol (kNN bank and linear probe over every experience's training "
            "images, scored on the union of the evaluation splits) unless marked "
            "per-experience.",
            "",
            bench.summary(numeric=False).to_markdown(index=False),
        ]
    if bench.failures:
        lines += ["", "Failed (the last good checkpoint of each stays in its directory):", ""]
        lines += [f"- {failure.describe()}" for failure in bench.failures]
    write_text(directory / "summary.md", "\n".join(lines).strip() + "\n")


def _json_float(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def _json_floats(values) -> list:
    return [_json_floats(v) if hasattr(v, "__len__") else _json_float(v) for v in values]
