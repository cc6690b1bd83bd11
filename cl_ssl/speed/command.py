"""``clssl speed`` (and ``python -m cl_ssl.speed``): flags from :class:`SpeedConfig`'s fields."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cl_ssl.flags import add_flags, build, given_values, options
from cl_ssl.speed.config import SpeedConfig

SPEED = options(SpeedConfig)


@add_flags((SPEED, None))
def speed(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option(help="Write the table to this .csv or .json file.")
    ] = None,
    row: Annotated[str | None, typer.Option(hidden=True)] = None,  # child: one row, JSON out
    config: Annotated[str | None, typer.Option(hidden=True)] = None,  # the child's config
    **values: Any,
) -> None:
    """Images/s of hand-written SimCLR loops vs cl-ssl's strategies (docs/performance.md).

    Exits 1 when a row failed (its error is in the table), 2 on bad input.
    """
    from cl_ssl.speed import format_report, run_speed, write_report
    from cl_ssl.speed.run import MARKER, run_row

    if row:
        result = run_row(row, SpeedConfig.from_json(config or "{}"))
        print(MARKER + json.dumps(result), flush=True)
        return
    try:
        speed_config = build(SpeedConfig, given_values(ctx, SPEED))
        if out is not None and out.suffix not in (".csv", ".json"):
            raise ValueError(f"--out {out}: write a .csv or .json file")
        report = run_speed(speed_config, log=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, FileNotFoundError, KeyError) as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    typer.echo(format_report(report))
    if out:
        write_report(report, out)
    if any("error" in r for r in report.rows):
        raise typer.Exit(1)
