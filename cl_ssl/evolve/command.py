"""``clssl evolve``: search flags from :class:`EvolveConfig`'s fields, the rest ``bench``'s.

``EvolveSettings.fitness`` declares ``--fitness``; every other flag is parsed by ``clssl
bench``'s own command, so an individual is exactly that bench.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cl_ssl.evolve.run import EvolveSettings, make_settings
from cl_ssl.evolve.search import EvolveConfig
from cl_ssl.flags import add_flags, build, given_values, options

EVOLVE = options(EvolveConfig) + options(EvolveSettings, recurse=False)


@add_flags((EVOLVE, "Search"))
def evolve(
    ctx: typer.Context,
    weight: Annotated[
        list[str] | None,
        typer.Option(
            help="Weight range STRATEGY.KEY=LOW:HIGH or METHOD.weight=LOW:HIGH (mixed "
            "--method a+b); overrides or adds one."
        ),
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Finish the evolve run in this directory.")
    ] = None,
    **values: Any,
) -> None:
    """Search the loss weights of a strategy with an evolutionary algorithm (validation data).

    Every other flag is `clssl bench`'s (--stream, --strategy, --epochs, --seeds, --out,
    --run, --config, ...): each individual is that bench with the searched weights, scored
    on the validation splits (--val-fraction, 0.2 unless given). Prints the best weights and
    the `clssl bench` command that reruns them on the test splits.
    """
    from cl_ssl.cli import USER_ERRORS, app, bench_config_of, fail
    from cl_ssl.evolve.run import DEFAULT_VAL_FRACTION, DISPLAY_FLAGS, WorkerDied, run_evolve
    from cl_ssl.evolve.space import parse_weight_flags

    try:
        if resume is not None:
            changing = [a for a in ctx.args if a not in DISPLAY_FLAGS]
            if changing:
                raise ValueError(
                    f"--resume {resume} reruns the saved settings: drop {' '.join(changing)}"
                )
            directory, search = run_evolve(resume=resume, on_individual=_print_individual)
        else:
            args = list(ctx.args)
            if not any(a.split("=")[0] == "--val-fraction" for a in args):
                args += ["--val-fraction", str(DEFAULT_VAL_FRACTION)]
            bench_command = typer.main.get_command(app).get_command(ctx, "bench")
            with bench_command.make_context("bench", list(args), parent=ctx) as sub:
                bench_config = bench_config_of(sub)
            given = given_values(ctx, EVOLVE)
            fitness = given.pop("fitness", values["fitness"])
            settings = make_settings(
                bench_config, args, build(EvolveConfig, given), fitness,
                parse_weight_flags(weight or []),
            )  # fmt: skip
            directory, search = run_evolve(settings, on_individual=_print_individual)
    except (*USER_ERRORS, FileExistsError, WorkerDied) as error:
        fail(error)
    best = search.best
    weights = ", ".join(f"{k}={v:.4g}" for k, v in best.weights.items())
    typer.echo(f"\nbest (individual {best.id}, fitness {best.fitness:.4f}): {weights}")
    typer.echo(f"rerun on the test splits: {(directory / 'best.json').name} has the command")
    typer.echo(json.loads((directory / "best.json").read_text())["command"])
    typer.echo(f"results: {directory}  (tensorboard --logdir {directory / 'tensorboard'})")


def _print_individual(individual) -> None:
    weights = ", ".join(f"{k}={v:.4g}" for k, v in individual.weights.items())
    status = f"failed: {individual.error}" if individual.failed else f"{individual.fitness:.4f}"
    typer.echo(f"[{individual.id}] round {individual.round}: {weights} -> {status}")
