"""``clssl speed``: images/s of cl-ssl's training against hand-written SimCLR loops.

Rows (each in its own process, same model, data, batch, threads and timing protocol):
``loop-lightly``, ``loop-batched`` (hand-written loops), ``data``, ``data-device``,
``data-disk`` (the data pipeline alone), ``step`` (the model step alone) and strategy
specs (``naive``, ``lwf-ssl``, ``ewc``, ``replay``, ``cassle``, ``a+b``, ``naive@device``)
trained through cl-ssl's template and timed on experience 1. See docs/performance.md for
what each row means.

Example:
    >>> report = run_speed(SpeedConfig(rows=("loop-batched", "naive")))
    >>> print(format_report(report))

Command line: ``python -m cl_ssl.speed [--rows naive,lwf-ssl] [--out speed.json]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cl_ssl.speed.config import DEFAULT_ROWS, SpeedConfig

if TYPE_CHECKING:
    from cl_ssl.speed.table import SpeedReport

# The table imports torch and pandas: loaded on first use, so `clssl --help` (which imports
# cl_ssl.speed.command) stays light.
_TABLE = ("SpeedReport", "format_report", "machine_header", "speed_table", "write_report")


def __getattr__(name: str) -> Any:
    if name in _TABLE:
        from cl_ssl.speed import table

        return getattr(table, name)
    raise AttributeError(f"module 'cl_ssl.speed' has no attribute {name!r}")


def run_speed(config: SpeedConfig, log: Callable[[str], None] | None = None) -> SpeedReport:
    """Run every row of ``config`` (one process each) and build the table."""
    from cl_ssl.speed.run import run_rows
    from cl_ssl.speed.table import SpeedReport, machine_header, speed_table

    header = machine_header(config)
    rows = run_rows(config, log)
    return SpeedReport(header, speed_table(rows), rows)


__all__ = [
    "DEFAULT_ROWS",
    "SpeedConfig",
    "SpeedReport",
    "format_report",
    "run_speed",
    "speed_table",
    "write_report",
]
