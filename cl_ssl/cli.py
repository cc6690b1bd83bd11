"""``clssl``: the command line. Thin by design: flags -> dataclasses -> library calls.

The settings' flags are declared once, on the dataclass fields (:mod:`cl_ssl.flags`);
``bench``, ``continue``, ``evolve`` and ``speed`` build their options from them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import cl_ssl  # noqa: F401  (silences third-party warnings before they are imported)
from cl_ssl.atomic import DiskFull, is_disk_full, write_csv, write_text

# Only light modules here: `clssl --help` and `clssl list` import neither torch, Avalanche,
# Lightly, Kornia nor pandas (tests/test_cli.py checks). Each command imports what it runs.
from cl_ssl.config import (
    BenchConfig,
    ContinueConfig,
    DriftConfig,
    FinetuneConfig,
    IngestConfig,
    StreamOptions,
)
from cl_ssl.evolve.command import evolve
from cl_ssl.experiment_file import (
    bench_config,
    preset_names,
    preset_summary,
    resume_config,
    to_toml,
)
from cl_ssl.flags import add_flags, build, given_values, options
from cl_ssl.registry import (
    Registry,
    UnknownNameError,
    backbones,
    datasets,
    methods,
    strategies,
    streams,
)
from cl_ssl.speed.command import speed

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Continual self-supervised learning: compare strategies on experience streams.",
)

USER_ERRORS = (UnknownNameError, ValueError, FileNotFoundError, FloatingPointError)
BENCH = options(BenchConfig)
PANELS = {"train": "Training", "stream_options": "Stream", "evaluation": "Evaluation"}
BENCH_GROUPS = [([o for o in BENCH if "." not in o.path], None)] + [
    ([o for o in BENCH if o.path.startswith(key + ".")], panel) for key, panel in PANELS.items()
]


def fail(error: BaseException) -> None:
    """Print one line naming the problem and exit with status 2."""
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


@app.command()
@add_flags(*BENCH_GROUPS)
def bench(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(help="Experiment file (TOML, see --print-config); flags override it."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="Named experiment (`clssl list --presets`); --config and flags override it."
        ),
    ] = None,
    print_config: Annotated[
        bool,
        typer.Option(
            "--print-config", help="Print the TOML file of this command line; run nothing."
        ),
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Finish the interrupted bench in this run directory, with its own "
            "configuration (a conflicting flag is an error)."
        ),
    ] = None,
    **values: Any,
) -> None:
    """Train each strategy on the same stream and seed; print matrices and the summary.

    Exits 1 when a strategy failed (the others still ran; see the summary) or the disk
    filled up (the bench stops; `--resume` goes on once space is freed), 2 on bad input.
    """
    from cl_ssl import distributed

    main = True  # rank 0 (or the only process) prints and sets the exit status
    try:
        if resume is not None:
            bench_config = _resume_config(ctx, resume)
        else:
            bench_config = bench_config_of(ctx)
        if print_config:
            typer.echo(to_toml(bench_config, BENCH), nl=False)
            return
        from cl_ssl.bench import run_bench

        backbones.get(bench_config.train.backbone)
        result = run_bench(bench_config, resume=resume is not None)
        main = distributed.is_main()
    except USER_ERRORS as error:
        if not distributed.is_main():
            raise typer.Exit(2) from None  # under torchrun: rank 0 alone prints the line
        fail(error)
    except OSError as error:  # outside any strategy run: bench.json, the run directory
        if not is_disk_full(error):
            raise
        typer.secho(f"error: {error}: free space, then run again", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    finally:
        distributed.teardown()
    if not main:
        return
    _print_bench(result)
    if not result.ok:
        for failure in result.failures:
            hint = (
                f": free space, then clssl bench --resume {result.directory}"
                if failure.error == DiskFull.__name__
                else ""
            )
            typer.secho(f"failed: {failure.describe()}{hint}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)


def bench_config_of(ctx: typer.Context) -> BenchConfig:
    """The :class:`BenchConfig` of ``clssl bench``'s command line (``ctx``)."""
    given = given_values(ctx, BENCH)
    return bench_config(given, ctx.params.get("preset"), ctx.params.get("config"))


def _resume_config(ctx: typer.Context, directory: Path) -> BenchConfig:
    """The run's own configuration; an explicit flag that disagrees with it is an error."""
    given = [n for n in ("overwrite", "config", "preset") if _source(ctx, n) == "COMMANDLINE"]
    if "overwrite" in given:
        raise ValueError("--resume finishes a run and --overwrite replaces it: pass one of them")
    if given:
        raise ValueError(f"--resume reruns the run's own bench.json: drop --{given[0]}")
    return resume_config(directory, given_values(ctx, BENCH), ctx.params["progress"])


def _source(ctx: typer.Context, name: str) -> str:
    # By name: typer may bring its own click, whose enum is not click's.
    return getattr(ctx.get_parameter_source(name), "name", "")


def _print_bench(result) -> None:
    """R matrices of the first seed, the summary, where the results are."""
    if not result.strategies:
        return
    first_seed = result.strategies[0].seed
    for strategy_result in result.strategies:
        if strategy_result.seed != first_seed:
            continue  # the matrices of one seed; every seed's are in its results.json
        _print_matrices(
            strategy_result,
            f" ({strategy_result.name}, seed {first_seed}): after training experience i, on "
            "experience j's evaluation split",
        )
    summary = result.directory / "summary.md"
    if summary.is_file():  # a full disk may have kept it from being written
        typer.echo("\n" + summary.read_text())
    typer.echo(f"\nresults: {result.directory}  (tensorboard --logdir {result.directory})")


STREAM = options(StreamOptions)
CONTINUE = options(ContinueConfig)


@app.command("continue")
@add_flags((CONTINUE, None), (STREAM, "Stream (each given flag replaces the checkpoint's option)"))
def continue_(ctx: typer.Context, **values: Any) -> None:
    """Train a trained embedding on the next period(s), with the strategy state it carries.

    Stream flags replace the checkpoint's stream options one by one (all others, the
    strategy, its options and the training recipe come from the checkpoint); --periods
    names every period so far, the new one last. The new checkpoints and metrics go beside
    the previous ones: one continual history. Exits 1 when training fails (the earlier
    checkpoints stay), 2 on bad input.
    """
    from cl_ssl.periodic import continue_training
    from cl_ssl.strategy_run import StrategyFailed

    try:
        given = given_values(ctx, STREAM)
        if "split_seed" in given:
            raise ValueError(
                "--split-seed must stay the checkpoint's (its splits decided what was trained "
                "on): drop the flag"
            )
        config = build(ContinueConfig, {**given_values(ctx, CONTINUE), "stream_options": given})
        result = continue_training(config)
    except StrategyFailed as failed:
        typer.secho(f"failed: {failed.failure.describe()}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except USER_ERRORS as error:
        fail(error)
    trained = sorted(result.metrics["train_exp"].unique())
    typer.echo(f"{result.name}: experiences trained so far {[int(k) for k in trained if k >= 0]}")
    _print_matrices(result, ":")
    typer.echo(f"\nresults: {result.directory}")


def _print_matrices(result, caption: str) -> None:
    """The SSL-loss and all-classes linear R matrices of one strategy run."""
    for metric, title in (("ssl_loss", "SSL loss"), ("all_linear", "all-classes linear")):
        if metric in result.metric_names:
            typer.echo(f"\n{title} R[i][j]{caption}")
            typer.echo(result.matrix(metric).to_string(float_format="{:.4f}".format))


@app.command()
def report(
    directories: Annotated[list[Path], typer.Argument(help="Bench directories (any number).")],
    out: Annotated[Path, typer.Option(help="Folder for the table and plots.")] = Path(
        "runs/report"
    ),
) -> None:
    """Merge runs and seeds into one table (mean ± std over seeds) and one set of plots.

    Runs of several methods (`clssl bench --method a,b`) get a method column: one row per
    (method, strategy), never a mean over methods.

    Refuses two runs of one (strategy, seed), and runs of different streams or budgets:
    a mean over them would mix different experiments. Stopped and failed runs are listed
    apart (``incomplete.csv``, under the table in ``report.md``), never ranked; exits 1
    when no run finished.
    """
    from cl_ssl.reporting.paired import CAPTION as PAIRED_CAPTION
    from cl_ssl.reporting.paired import paired_figures, paired_table
    from cl_ssl.reporting.plots import write_plots
    from cl_ssl.reporting.report import load_runs
    from cl_ssl.reporting.summary import (
        figures_by_seed,
        headline_table,
        method_column,
        summary_stats,
    )

    try:
        runs = load_runs(directories)
    except USER_ERRORS as error:
        fail(error)
    out.mkdir(parents=True, exist_ok=True)
    incomplete = ""
    if not runs.incomplete.empty:
        write_csv(out / "incomplete.csv", runs.incomplete, index=False)
        incomplete = (
            f"Not ranked: {len(runs.incomplete)} run(s) stopped or failed before the end of "
            "the stream (`clssl bench --resume` on their bench directory finishes them):\n\n"
            + runs.incomplete.to_markdown(index=False)
        )
    else:
        (out / "incomplete.csv").unlink(missing_ok=True)  # of an earlier report
    if runs.tidy.empty:
        write_text(out / "report.md", incomplete + "\n")
        typer.echo(incomplete)
        typer.secho(
            f"error: no finished run to report: finish the runs above (report: {out})",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(1)
    ranked = headline_table(runs.tidy, runs.timings)
    table = method_column(ranked)  # a grid: method column
    write_csv(out / "report.csv", table, index=False)
    found = figures_by_seed(runs.tidy)
    paired = paired_figures(found)
    pairs = ""
    if not paired.empty:  # naive ran: every strategy against it, seed by seed
        write_csv(out / "paired.csv", paired, index=False)
        pairs = PAIRED_CAPTION + method_column(
            paired_table(paired, list(ranked["strategy"]))
        ).to_markdown(index=False)
    else:
        (out / "paired.csv").unlink(missing_ok=True)  # of an earlier report
    write_text(
        out / "report.md",
        "\n\n".join(filter(None, [table.to_markdown(index=False), pairs, incomplete])) + "\n",
    )
    write_csv(out / "figures.csv", found, index=False)
    write_csv(out / "report_stats.csv", summary_stats(runs.tidy, runs.timings), index=False)
    write_csv(out / "metrics.csv", runs.tidy, index=False)
    write_plots(runs.tidy, out)
    typer.echo(table.to_markdown(index=False))
    if pairs:
        typer.echo("\n" + pairs)
    if incomplete:
        typer.echo("\n" + incomplete)
    typer.echo(f"\nreport: {out}")


FINETUNE = options(FinetuneConfig)


@app.command()
@add_flags((FINETUNE, None))
def finetune(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="CSV path of the report.")] = None,
    **values: Any,
) -> None:
    """Frozen encoder + MLP head on a small labeled set: scikit-learn classification report."""
    from cl_ssl.finetune import finetune as run_finetune

    try:
        config = build(FinetuneConfig, given_values(ctx, FINETUNE))
        result = run_finetune(config)
    except USER_ERRORS as error:
        fail(error)
    name = f"{config.checkpoint.stem}-finetune-{Path(config.data).name}.csv"
    csv = out or config.checkpoint.with_name(name)
    csv.parent.mkdir(parents=True, exist_ok=True)
    write_csv(csv, result.table, index_label="class")
    typer.echo(f"labeled data: {result.source}")
    typer.echo(f"{result.train_images} labeled training images, {result.test_images} test images\n")
    typer.echo(result.text)
    typer.echo(f"report: {csv}")


INGEST = options(IngestConfig)


@app.command()
@add_flags((INGEST, None))
def ingest(
    ctx: typer.Context,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    **values: Any,
) -> None:
    """Decode VODs into JPEG frames and a frame manifest; resumes where it stopped."""
    from cl_ssl.ingest import ingest as run_ingest

    try:
        config = build(IngestConfig, given_values(ctx, INGEST))
        report = run_ingest(config, progress)
    except USER_ERRORS as error:
        fail(error)
    typer.echo(
        f"{len(report.done)} VOD(s) ingested ({report.frames} frames), "
        f"{len(report.skipped)} already done, {len(report.failed)} failed"
    )
    for vod_id, reason in report.failed.items():
        typer.secho(f"  failed {vod_id}: {reason}", fg=typer.colors.YELLOW)
    if not report.done and not report.skipped:
        # Nothing usable: a zero exit (and a manifest path) would let a script go on blindly.
        fail(ValueError(f"no VOD was ingested, so no manifest was written: fix the "
                        f"{config.vods_csv} rows"))  # fmt: skip
    typer.echo(f"manifest: {config.manifest}")


DRIFT = options(DriftConfig)


@app.command()
@add_flags((DRIFT, None))
def drift(ctx: typer.Context, **values: Any) -> None:
    """Build a time-stamped manifest with a chosen content drift between periods."""
    from cl_ssl.drift import build_drift_manifest, drift_summary

    try:
        config = build(DriftConfig, given_values(ctx, DRIFT))
        manifest = build_drift_manifest(config)
    except USER_ERRORS as error:
        fail(error)
    summary = drift_summary(manifest, config)
    typer.echo(summary.to_markdown(index=False))
    typer.echo(
        f"\nmanifest: {config.out}\nclssl bench --stream twitch-periods --manifest "
        f"{config.out} --periods {','.join(summary['period'])}"
    )


app.command()(speed)  # cl_ssl/speed/command.py
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    evolve  # cl_ssl/evolve/command.py
)


@app.command("list")
def list_entries(
    strategies_only: Annotated[
        bool, typer.Option("--strategies", help="Only strategies, with their options.")
    ] = False,
    metrics_only: Annotated[
        bool, typer.Option("--metrics", help="Only metrics: direction, kind, protocols.")
    ] = False,
    presets_only: Annotated[
        bool, typer.Option("--presets", help="Only the presets (`clssl bench --preset NAME`).")
    ] = False,
) -> None:
    """Print the registered streams, strategies (with options), backbones and methods.

    Read from the registries' source (``cl_ssl.registry_index``): nothing is trained or
    imported, so it answers in a fraction of a second.
    """
    if metrics_only:  # imports the metrics' modules (torch): not in the fast listing
        from cl_ssl.evaluation.metric_registry import metric_lines

        return typer.echo("\n".join(metric_lines()))
    if presets_only:
        typer.echo("presets (clssl bench --preset NAME):")
        for name in preset_names():
            typer.echo(f"  {name}: {preset_summary(name)}")
        return
    _list_registry("strategies", strategies, "--opt")
    if strategies_only:
        return
    _list_registry("methods", methods, "--method-opt")
    typer.echo(
        "  A+B: the methods' losses mixed, one head each (e.g. --method simclr+barlow-twins);\n"
        "      --method-opt A.weight=  (float, default 1.0: the mixing weight)"
    )
    for title, registry in (("streams", streams), ("backbones", backbones), ("datasets", datasets)):
        _list_registry(title, registry)


def _list_registry(title: str, registry: Registry, flag: str | None = None) -> None:
    """``title:``, then ``  name: summary`` per entry and, with ``flag``, one line per option."""
    typer.echo(f"{title}:")
    for entry in registry.catalogue():
        typer.echo(f"  {entry.name}: {entry.summary}")
        if flag is not None:
            for key, type_name, default in entry.options or ():
                typer.echo(f"      {flag} {entry.name}.{key}=  ({type_name}, default {default})")


def main() -> None:
    """Entry point for ``python -m cl_ssl`` and ``clssl``.

    Under torchrun, torch's ``record`` hands an error's traceback to the launcher, which
    stops every other rank and prints the failing rank's message.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from torch.distributed.elastic.multiprocessing.errors import record

        command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
        if command not in (None, "bench"):
            typer.secho(
                f"error: clssl {command} runs in one process: under torchrun run `clssl "
                "bench` (and --resume), or start this command without torchrun",
                err=True,
                fg=typer.colors.RED,
            )
            raise SystemExit(2)
        record(app)()
    else:
        app()
