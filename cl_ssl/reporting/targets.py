"""Results that stay true: a bench's figures checked against committed targets.

Like the supervised continual-learning baseline projects that test their results against
a ``target_results.csv``, ``make check-results`` reruns a fixed subset of cl-ssl's
comparisons and compares every figure of its ``summary_stats.csv`` (mean over seeds) with
the committed target: ``|measured - target| <= tolerance``. Targets are rows of
``docs/results/targets.csv``:

    tier, strategy, column, mean, tolerance, source

``tier`` names the subset (``ci``: minutes, run by CI; ``full``: more strategies and
seeds), ``column`` a summary column (``final acc (all-classes kNN-20)``, ``SSL-loss
forgetting %``, ...), ``source`` the commit and machine the target was measured on.
:func:`write_targets` derives targets from measured runs: the mean, and a tolerance of
``max(floor, 3 x std over seeds)`` (:data:`FLOORS`). The seed spread, not float noise, sets
the tolerance: another thread count (or machine) splits float sums differently, and a run
then drifts as far as another seed would (measured in docs/results.md). A strategy whose
loss term is disabled lands outside them: that is what the check is for.

Example:
    $ python -m cl_ssl.reporting.targets runs/check-ci --tier ci
    >>> failures = check(Path("runs/check-ci"), load_targets(TARGETS, "ci"))
    >>> failures
    ['lwf-ssl: final acc (all-classes kNN-20) = 0.8715, target 0.9367 ± 0.0589', ...]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from cl_ssl.atomic import write_csv

TARGETS = Path(__file__).resolve().parents[2] / "docs" / "results" / "targets.csv"
"""The committed targets (in a source checkout)."""

COLUMNS = ("tier", "strategy", "column", "mean", "tolerance", "source")
FLOORS = {
    "final acc (all-classes linear)": 0.02,
    "final acc (all-classes kNN-20)": 0.02,
    "plasticity": 0.02,
    "forgetting": 0.02,
    "final NMI (all-classes)": 0.03,
    "SSL-loss forgetting %": 2.0,
}
"""Checked summary columns and their tolerance floors (accuracy points; % for the loss)."""


def load_targets(path: Path, tier: str) -> pd.DataFrame:
    """The targets of ``tier`` in ``path`` (one line naming the problem when unusable)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"targets file {path} not found: pass --targets FILE")
    frame = pd.read_csv(path)
    missing = sorted(set(COLUMNS) - set(frame.columns))
    if missing:
        raise ValueError(f"{path} lacks the column(s) {missing}; it needs {list(COLUMNS)}")
    rows = frame[frame["tier"] == tier]
    if rows.empty:
        tiers = sorted(frame["tier"].unique())
        raise ValueError(f"{path} has no targets for tier '{tier}'; it has {tiers}")
    return rows.reset_index(drop=True)


def measured(run: Path) -> pd.DataFrame:
    """``summary_stats.csv`` of a finished bench directory ``run``."""
    path = Path(run) / "summary_stats.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run} is not a finished bench directory")
    return pd.read_csv(path)


def check(run: Path, targets: pd.DataFrame) -> list[str]:
    """One line per target the bench in ``run`` misses (empty: every figure holds).

    A target whose strategy or column the bench did not measure is a miss too, so a
    strategy that stopped early cannot pass by absence.
    """
    stats = measured(run).set_index(["strategy", "column"])
    failures = []
    for row in targets.itertuples():
        key = (row.strategy, row.column)
        if key not in stats.index or pd.isna(stats.loc[key, "mean"]):
            failures.append(f"{row.strategy}: {row.column} was not measured in {run}")
            continue
        value = float(stats.loc[key, "mean"])
        if abs(value - row.mean) > row.tolerance:
            failures.append(
                f"{row.strategy}: {row.column} = {value:.4g}, target {row.mean:.4g} "
                f"± {row.tolerance:.3g}"
            )
    return failures


def write_targets(
    run: Path, tier: str, source: str, path: Path, strategies: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Replace ``tier``'s rows of ``path`` by targets measured in ``run``; returns them.

    Mean over seeds; tolerance ``max(floor, 3 x std)`` per :data:`FLOORS` column (3 std of
    one seed's value, so a tier that runs one seed is checked against a several-seed run).
    ``strategies`` keeps those strategies' rows only (empty: all).
    """
    stats = measured(run)
    stats = stats[stats["column"].isin(FLOORS) & stats["mean"].notna()]
    if strategies:
        missing = sorted(set(strategies) - set(stats["strategy"]))
        if missing:
            raise ValueError(f"{run} did not measure {missing}: targets need a finished run")
        stats = stats[stats["strategy"].isin(strategies)]
    spread = 3 * stats["std"].fillna(0.0)
    rows = pd.DataFrame(
        {
            "tier": tier,
            "strategy": stats["strategy"],
            "column": stats["column"],
            "mean": stats["mean"].round(4),
            "tolerance": [
                round(max(FLOORS[c], s), 4) for c, s in zip(stats["column"], spread, strict=True)
            ],
            "source": source,
        }
    )
    kept = pd.read_csv(path) if Path(path).is_file() else pd.DataFrame(columns=COLUMNS)
    table = pd.concat([kept[kept["tier"] != tier], rows], ignore_index=True)
    write_csv(path, table, index=False)
    return rows


app = typer.Typer(add_completion=False)


@app.command()
def main(
    run: Annotated[Path, typer.Argument(help="Finished bench directory.")],
    tier: Annotated[str, typer.Option(help="Targets tier: ci or full.")],
    targets: Annotated[Path, typer.Option(help="Targets CSV.")] = TARGETS,
    write: Annotated[bool, typer.Option(help="Write the tier's targets from RUN.")] = False,
    source: Annotated[str, typer.Option(help="Commit and machine, with --write.")] = "",
    strategies: Annotated[
        str, typer.Option(help="With --write: only these strategies, e.g. naive,lwf-ssl.")
    ] = "",
) -> None:
    """Check RUN's summary figures against the tier's targets; exit 1 naming each miss."""
    try:
        if write:
            only = tuple(name for name in strategies.split(",") if name)
            rows = write_targets(run, tier, source, targets, only)
            typer.echo(f"wrote {len(rows)} '{tier}' targets to {targets}")
            return
        wanted = load_targets(targets, tier)
        failures = check(run, wanted)
    except (OSError, ValueError) as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    for line in failures:
        typer.echo(f"MISSED {line}")
    typer.echo(f"{len(wanted) - len(failures)} of {len(wanted)} '{tier}' targets hold")
    if failures:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
