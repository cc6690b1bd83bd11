"""The speed table: row results -> ratios -> markdown, CSV or JSON.

Ratio columns (empty where the reference row was not run, failed, or does not apply):

- ``vs loop-batched``, ``vs loop-lightly``: images/s of the row / images/s of that loop
  (> 1: faster than the hand-written loop);
- ``step time vs naive`` (strategy rows): s/step / naive's s/step;
- ``image time vs naive`` (strategy rows): seconds per image processed / naive's, i.e.
  naive's images/s / the row's; differs from the step ratio when a strategy's steps hold
  more images (``replay`` with ``mode=double``);
- ``vs step`` (data rows): the pipeline's images/s / the model step's (> 1: the data keeps
  up with the model).

Example:
    >>> table = speed_table([{"row": "naive", "images_per_s": 200.0, ...}, ...])
    >>> print(format_report(SpeedReport(header, table, rows)))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from cl_ssl.atomic import write_csv, write_text
from cl_ssl.speed.config import LOOP_ROWS, PIPELINE_ROWS, SpeedConfig
from cl_ssl.speed.data import DataSource
from cl_ssl.speed.timing import cpu_model, device_name, malloc_name, resolve_device

COLUMNS = [
    "row",
    "images/step",
    "images/s",
    "windows min-max",
    "s/step",
    "vs loop-batched",
    "vs loop-lightly",
    "step time vs naive",
    "image time vs naive",
    "vs step",
    "peak RSS MB",
    "peak GPU MB",
    "warm-up s",
    "workers",
    "note",
]


@dataclass
class SpeedReport:
    """A finished table: the header (machine and settings), the table and the raw rows."""

    header: dict
    table: pd.DataFrame
    rows: list[dict]


def machine_header(config: SpeedConfig) -> dict:
    """Machine, software and settings every row of the table shares."""
    device = resolve_device(config.device)
    threads = config.threads or torch.get_num_threads()
    return {
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "threads": threads,
        "allocator": malloc_name(),  # rows inherit the parent's environment (LD_PRELOAD)
        "device": device_name(device),
        "backbone": config.backbone,
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "precision": (
            f"auto ({'bf16' if device.type == 'cuda' else 'fp32'})"
            if config.precision == "auto"
            else config.precision
        ),
        "data": DataSource(config).describe(),
        "storage": config.storage,
        "timing": (
            f"median of {config.windows} windows x {config.steps} steps after "
            f"{config.warmup} warm-up steps, batch loading included; strategies on "
            f"experience 1 after {config.first_experience_steps} steps of experience 0"
        ),
        "channels_last": "auto" if config.channels_last is None else config.channels_last,
        "compile": config.compile,
        "loader workers": (
            config.workers
            if config.workers is not None
            else f"loops {config.loop_workers(True)} per-image / 0 on tensors, cl-ssl "
            f"{config.cl_ssl_workers('memory')} in memory / {config.cl_ssl_workers('disk')} files"
        ),
    }


def speed_table(rows: list[dict]) -> pd.DataFrame:
    """One table row per result, ratios filled in (see the module docstring)."""
    ok = {r["row"]: r for r in rows if "error" not in r}

    def ratio(row: dict, reference: str, key: str = "images_per_s") -> float | None:
        base = ok.get(reference)
        if "error" in row or base is None or row["row"] == reference:
            return None
        return row[key] / base[key]

    records = []
    for row in rows:
        strategy = row["row"] not in LOOP_ROWS + PIPELINE_ROWS
        is_data = row["row"] in ("data", "data-disk")
        speedup = ratio(row, "naive")  # images/s vs naive's: time per image is its inverse
        rates = row.get("window_images_per_s", [])
        records.append(
            {
                "row": row["row"],
                "images/step": row.get("images_per_step"),
                "images/s": row.get("images_per_s"),
                "windows min-max": f"{min(rates):.0f}-{max(rates):.0f}" if rates else "",
                "s/step": row.get("s_per_step"),
                "vs loop-batched": ratio(row, "loop-batched"),
                "vs loop-lightly": ratio(row, "loop-lightly"),
                "step time vs naive": ratio(row, "naive", "s_per_step") if strategy else None,
                "image time vs naive": 1 / speedup if strategy and speedup else None,
                "vs step": ratio(row, "step") if is_data else None,
                "peak RSS MB": row.get("peak_rss_mb"),
                "peak GPU MB": row.get("peak_gpu_mb"),
                "warm-up s": row.get("warmup_s"),
                "workers": row.get("workers"),
                "note": row["error"] if "error" in row else _note(row),
            }
        )
    return pd.DataFrame(records, columns=COLUMNS)


def _note(row: dict) -> str:
    parts = []
    if "experience" in row:
        terms = ", ".join(f"{k} {v:.3g}" for k, v in row["loss_terms"].items())
        parts.append(f"exp {row['experience']}; loss terms (mean abs): {terms}")
    if row.get("workers_private_mb"):
        parts.append(f"workers' private memory {row['workers_private_mb']:.0f} MB")
    return "; ".join(parts)


def format_report(report: SpeedReport) -> str:
    """The header as one line, then the table in markdown."""
    header = " | ".join(f"{k}: {v}" for k, v in report.header.items())
    table = report.table.copy()
    formats = (("images/s", 0), ("s/step", 3), ("peak RSS MB", 0), ("peak GPU MB", 0))
    for column, digits in (*formats, ("warm-up s", 1)):
        table[column] = table[column].map(lambda v, d=digits: "" if pd.isna(v) else f"{v:.{d}f}")
    for column in COLUMNS[5:10]:
        table[column] = table[column].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    table["images/step"] = table["images/step"].map(lambda v: "" if pd.isna(v) else f"{v:g}")
    table["workers"] = table["workers"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    return f"{header}\n\n{table.to_markdown(index=False)}"


def write_report(report: SpeedReport, path: Path) -> None:
    """``.csv``: the table; ``.json``: header, table and raw rows (per-window rates too)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        write_csv(path, report.table, index=False)
    elif path.suffix == ".json":
        table = json.loads(report.table.to_json(orient="records"))
        payload = {"header": report.header, "table": table, "rows": report.rows}
        write_text(path, json.dumps(payload, indent=2) + "\n")
    else:
        raise ValueError(f"--out {path}: write a .csv or .json file")
