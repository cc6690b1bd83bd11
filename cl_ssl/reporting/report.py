"""Tables of one bench or of many runs and seeds: figures per strategy, mean ± std.

Reads what :mod:`cl_ssl.bench` writes (``<strategy>/seed<s>/metrics.csv`` tidy rows, the
run's ``config.json`` and ``results.json`` timings). Only finished runs (``results.json``,
no ``failure.json``) enter the table: a stopped or failed one is listed apart in
:attr:`Runs.incomplete` with how far it got (``2 of 5 experiences``), never in a mean or
the ranking, since its last row is no final figure. Runs are merged only when a mean over
them means something: one run per (strategy, seed), and the same stream (name, options,
split seed) and the same budget (training settings but the seed and device, evaluation
settings but the seed, the evaluated split) throughout. Runs of one strategy with
different options are different rows, never one mean: each is labelled by the options
that differ, as given on the command line (``lwf-ssl (mode=contrastive)`` beside
``lwf-ssl (mode=relational)``).

Example:
    >>> runs = load_runs([Path("runs/seed0"), Path("runs/seed1")])
    >>> print(headline_table(runs.tidy, runs.timings).to_markdown(index=False))  # summary.py
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cl_ssl.outputs import FAILURE_FILE, METRICS_FILE, RESULTS_FILE
from cl_ssl.reporting.summary import method_label
from cl_ssl.reporting.tables import TIDY_COLUMNS
from cl_ssl.run_config import RunConfig, find_config_file, load_run_config

TIMING_COLUMNS = [
    "strategy",
    "seed",
    "train_s",
    "eval_s",
    "images_per_s",
    "ms_per_step",
    "images_per_step",
    "data_wait_pct",
]

INCOMPLETE_COLUMNS = ["strategy", "seed", "status", "progress", "path"]

UNKNOWN = "unknown"
"""Value of a setting a run's files do not record."""

# Settings that may differ between merged runs: the training seed is what seeds vary, and
# the device changes speed, not results.
FREE_TRAIN = ("seed", "device", "workers")  # they change no result
FREE_EVALUATION = ("seed",)
METHOD_SETTINGS = ("method", "method_options")  # free in a grid of methods, kept apart


@dataclass
class Runs:
    """Tidy metric rows and one timing row per finished (strategy, seed) run.

    ``incomplete`` lists the stopped and failed runs, which are in neither: strategy, seed,
    status (``stopped``, or ``failed (ErrorType)``), progress (``2 of 5 experiences``) and
    path.
    """

    tidy: pd.DataFrame
    timings: pd.DataFrame
    incomplete: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=INCOMPLETE_COLUMNS)
    )


@dataclass
class _Run:
    """One ``metrics.csv``, its rows and its run's config (None when no file records it)."""

    csv: Path
    frame: pd.DataFrame
    config: RunConfig | None
    label: str | None = None  # the strategy's row name when variants of it are merged

    @property
    def directory(self) -> Path:
        return self.csv.parent

    def keys(self) -> set[tuple[str, int]]:
        """The (strategy, seed) pairs this run holds."""
        pairs = {(str(a), int(b)) for a, b in self.frame[["strategy", "seed"]].values}
        if self.config is not None and "seed" in self.config.train:
            pairs.add((self.label or self.config.strategy, int(self.config.train["seed"])))
        return pairs


def load_runs(directories: Sequence[Path]) -> Runs:
    """Every run (``metrics.csv``, ``results.json``, ``failure.json``) under ``directories``.

    Finished runs go into the table; stopped and failed ones into ``incomplete`` only, so
    they neither join a mean nor clash with a finished run of their (strategy, seed).

    Raises:
        FileNotFoundError: A directory does not exist.
        ValueError: No run found, a truncated or corrupt ``metrics.csv``, two finished runs
            of one (strategy, seed), or finished runs of different streams, budgets or
            strategy options.
    """
    runs: list[_Run] = []
    incomplete: list[_Run] = []
    found_directories: set[Path] = set()
    for directory in map(Path, directories):
        if not directory.exists():
            raise FileNotFoundError(f"{directory} not found: pass bench directories under runs/")
        found = sorted(
            {path.parent for name in (METRICS_FILE, FAILURE_FILE) for path in directory.rglob(name)}
        )
        if not found:
            raise ValueError(f"no metrics.csv under {directory}: is it a `clssl bench` output?")
        for run_directory in found:
            if run_directory.resolve() in found_directories:
                continue  # the same run reached twice (runs/a and runs/a/naive): read once
            found_directories.add(run_directory.resolve())
            csv = run_directory / METRICS_FILE
            frame = read_metrics(csv) if csv.is_file() else pd.DataFrame(columns=TIDY_COLUMNS)
            has_config = find_config_file(run_directory) is not None
            config = load_run_config(run_directory) if has_config else None
            run = _Run(csv, frame, config)
            (runs if _finished(run) else incomplete).append(run)
    label_variants(runs)
    several = label_methods(runs)
    check_mergeable(runs, free_train=FREE_TRAIN + (METHOD_SETTINGS if several else ()))

    timings = []
    for run in runs:
        results = run.csv.with_name(RESULTS_FILE)
        if results.is_file():
            payload = _read_json(results)
            timings.append(
                {
                    "strategy": run.label or payload["strategy"],
                    "seed": payload["train"]["seed"],
                    "train_s": payload["train_seconds"],
                    "eval_s": payload["eval_seconds"],
                    "images_per_s": payload["images_per_second"],
                    "ms_per_step": payload.get("ms_per_step", np.nan),
                    "images_per_step": payload.get("images_per_step", np.nan),
                    "data_wait_pct": payload.get("data_wait_pct", np.nan),
                }
            )
    frames = [run.frame for run in runs]
    return Runs(
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TIDY_COLUMNS),
        pd.DataFrame(timings, columns=TIMING_COLUMNS),
        pd.DataFrame([_incomplete_row(run) for run in incomplete], columns=INCOMPLETE_COLUMNS),
    )


def read_metrics(csv: Path) -> pd.DataFrame:
    """The tidy rows of one ``metrics.csv``, checked whole.

    Raises:
        ValueError: Naming the file when it is truncated (cut mid-line) or corrupt (does
            not parse, lacks a column, a missing or non-numeric key or value).
    """

    def corrupt(reason: str) -> ValueError:
        return ValueError(
            f"{csv} is truncated or corrupt: {reason}; restore the file or rerun that run"
        )

    data = csv.read_bytes()
    if data and not data.endswith(b"\n"):  # every write ends its last row
        raise corrupt("its last line is cut short")
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise corrupt(f"pandas cannot parse it ({str(error).strip().splitlines()[0]})") from None
    missing = set(TIDY_COLUMNS) - set(frame.columns)
    if missing:
        raise corrupt(f"it lacks columns {sorted(missing)} (expected {TIDY_COLUMNS})")
    frame = frame[TIDY_COLUMNS].copy()
    for column in ("strategy", "metric"):
        if frame[column].isna().any():
            raise corrupt(f"column {column} has empty cells")
    for column in ("seed", "train_exp", "eval_exp"):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any() or (values % 1 != 0).any():
            raise corrupt(f"column {column} has empty or non-integer cells")
        frame[column] = values.astype(int)
    values = pd.to_numeric(frame["value"], errors="coerce")
    if (values.isna() & frame["value"].notna()).any():  # NaN itself is a measured value
        raise corrupt("column value has non-numeric cells")
    frame["value"] = values.astype(float)
    return frame


def _read_json(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path} is truncated or corrupt ({error.__class__.__name__}): restore the file "
            "or rerun that run"
        ) from None
    return payload if isinstance(payload, dict) else {}


def _finished(run: _Run) -> bool:
    """True when the run wrote ``results.json`` and no ``failure.json`` after it.

    A bare ``metrics.csv`` (neither file) counts as finished when it trained every
    experience of the stream.
    """
    if (run.directory / FAILURE_FILE).is_file():
        return False
    if (run.directory / RESULTS_FILE).is_file():
        return True
    if run.config is not None:  # config.json, written when the run started
        return False
    trained, total = _progress(run)
    return total is not None and trained >= total


def _progress(run: _Run) -> tuple[int, int | None]:
    """(experiences trained, experiences in the stream, None when unknown).

    The stream's length: the experiences evaluated (the untrained model is evaluated on
    every one before training), else what a finished run of the same bench recorded.
    """
    frame = run.frame
    trained = int(frame.loc[frame["train_exp"] >= 0, "train_exp"].nunique())
    evaluated = int(frame.loc[frame["eval_exp"] >= 0, "eval_exp"].nunique())
    if evaluated:
        return trained, evaluated
    for results in sorted(run.directory.parent.parent.glob(f"*/seed*/{RESULTS_FILE}")):
        recorded = _read_json(results).get("experiences")
        if isinstance(recorded, int):
            return trained, recorded
    return trained, None


def _incomplete_row(run: _Run) -> dict[str, Any]:
    """The ``incomplete`` row of a stopped or failed run."""
    failure_file = run.directory / FAILURE_FILE
    failure = _read_json(failure_file) if failure_file.is_file() else None
    strategy, seed = run.directory.parent.name, run.directory.name.removeprefix("seed")
    if run.config is not None:
        strategy, seed = run.config.strategy, run.config.train.get("seed", seed)
    elif not run.frame.empty:
        strategy, seed = run.frame["strategy"].iloc[0], run.frame["seed"].iloc[0]
    if failure is not None:
        strategy, seed = failure.get("name", strategy), failure.get("seed", seed)
        status = f"failed ({failure['error']})" if failure.get("error") else "failed"
    else:
        status = "stopped"
    trained, total = _progress(run)
    return {
        "strategy": str(strategy),
        "seed": int(seed) if str(seed).isdigit() else seed,
        "status": status,
        "progress": f"{trained} of {'?' if total is None else total} experiences",
        "path": str(run.directory),
    }


def check_mergeable(runs: Sequence[_Run], free_train: tuple[str, ...] = FREE_TRAIN) -> None:
    """Refuse runs whose mean over seeds would mix different experiments.

    ``free_train``: training settings that may differ (the method too in a grid of methods,
    whose runs :func:`label_methods` keeps apart).

    Raises:
        ValueError: Naming the two runs and the setting(s) they differ in.
    """
    seen: dict[tuple[str, int], Path] = {}
    for run in runs:
        for key in sorted(run.keys()):
            if key in seen:
                strategy, seed = key
                raise ValueError(
                    f"duplicate runs of {strategy} seed {seed}: {seen[key]} and "
                    f"{run.directory}; pass each (strategy, seed) once"
                )
            seen[key] = run.directory
    if len(runs) < 2:
        return
    unknown = next((run for run in runs if run.config is None), None)
    if unknown is not None:
        raise ValueError(
            f"cannot merge {unknown.directory} with other runs: it has neither config.json nor "
            "results.json, so its stream and budget are unknown; report it alone"
        )
    first = runs[0]

    def budget(config: RunConfig) -> dict[str, Any]:
        return budget_settings(config, free_train)

    for run in runs[1:]:
        for group, settings in (("streams", stream_settings), ("budgets", budget)):
            differences = _differences(settings(first.config), settings(run.config))
            # Different streams have different options anyway: the names say enough.
            differences = [d for d in differences if d[0] == "stream"] or differences
            if differences:
                raise ValueError(
                    f"cannot merge runs of different {group}: "
                    f"{_describe(differences, first.directory, run.directory)}; "
                    "report them separately"
                )


def label_methods(runs: Sequence[_Run]) -> bool:
    """In runs of several methods, label each ``strategy [method]``, in place.

    A grid of methods (``clssl bench --method simclr,byol``) is one table with the method
    as a column (:func:`cl_ssl.reporting.summary.method_column`), never a mean over methods.
    Runs of one method with different method options get them in the label too
    (``naive [simclr (temperature=0.2)]``). Returns whether the runs hold several methods.
    """
    known = [run for run in runs if run.config is not None]  # others: check_mergeable refuses
    by_method: dict[str, list[_Run]] = {}
    for run in known:
        by_method.setdefault(str(run.config.train.get("method", UNKNOWN)), []).append(run)
    if len(by_method) < 2:
        return False
    for method, mine in by_method.items():
        shown = [_flatten(_plain(run.config.train.get("method_options") or {})) for run in mine]
        differ = any(options != shown[0] for options in shown)
        for run, options in zip(mine, shown, strict=True):
            text = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
            name = f"{method} ({text})" if differ and text else method
            run.label = method_label(run.label or run.config.strategy, name)
            run.frame = run.frame.assign(strategy=run.label)
    return True


def label_variants(runs: Sequence[_Run]) -> None:
    """Rename the runs of one strategy that differ in its options, in place.

    Each variant's rows are labelled ``strategy (key=value, ...)`` with the options that
    differ between the variants, as they ran (:func:`strategy_settings`), so
    ``lwf-ssl`` relational and contrastive become two rows and never one mean.
    """
    by_strategy: dict[str, list[_Run]] = {}
    for run in runs:
        if run.config is not None:
            by_strategy.setdefault(run.config.strategy, []).append(run)
    for strategy, mine in by_strategy.items():
        flat = [_flatten(strategy_settings(run.config)) for run in mine]
        differing = sorted(
            {k for f in flat for k in set(f) | set(flat[0]) if f.get(k) != flat[0].get(k)}
        )
        if not differing:
            continue
        for run, settings in zip(mine, flat, strict=True):
            shown = ", ".join(
                f"{_short(strategy, k)}={settings.get(k, 'unset')}" for k in differing
            )
            label = f"{strategy} ({shown})"
            run.frame = run.frame.assign(strategy=label)
            run.label = label


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _short(strategy: str, key: str) -> str:
    """``lwf-ssl.mode`` -> ``mode`` for a single-plugin strategy; composed ones keep the owner."""
    return key.partition(".")[2] if "+" not in strategy else key


def stream_settings(config: RunConfig) -> dict[str, Any]:
    """What defines the data: the stream, all its options and the split seed."""
    options: Any = UNKNOWN
    if config.stream_options is not None:
        options = {**asdict(config.stream_options), **config.ignored_options}
        options.pop("split_seed", None)  # compared once, as split_seed below
        # ../data and /abs/data name one folder when run from different directories;
        # relative paths resolve against this process's directory, as the runs' did.
        for key in ("data_root", "manifest"):
            if options.get(key) is not None:
                options[key] = str(Path(options[key]).resolve())
        if options.get("datasets"):
            options["datasets"] = _resolved_datasets(options["datasets"])
    split_seed = UNKNOWN if config.split_seed is None else config.split_seed
    return _plain({"stream": config.stream, "stream_options": options, "split_seed": split_seed})


def _resolved_datasets(specs: str) -> str:
    """``--datasets`` with its folders resolved: ``NAME=ROOT`` roots and bare paths (a ``/``).

    Registry names (``digits``) stay as they are, so ``cifar10=../data/cifar10`` and
    ``cifar10=/abs/data/cifar10`` compare equal when they name one folder.
    """
    parts = []
    for part in (p.strip() for p in specs.split(",") if p.strip()):
        name, sep, root = part.partition("=")
        if sep:
            parts.append(f"{name}={Path(root).resolve()}")
        else:
            parts.append(str(Path(part).resolve()) if "/" in part else part)
    return ",".join(parts)


def budget_settings(config: RunConfig, free_train: tuple[str, ...] = FREE_TRAIN) -> dict[str, Any]:
    """What defines the training and evaluation budget, all but the training seed."""
    train = {k: v for k, v in config.train.items() if k not in free_train}
    evaluation = {k: v for k, v in config.evaluation.items() if k not in FREE_EVALUATION}
    return _plain({"train": train, "evaluation": evaluation, "eval_split": config.eval_split})


def strategy_settings(config: RunConfig) -> dict[str, Any]:
    """The options of the plugins the run's strategy is composed of (``lwf-ssl.lambda``).

    As the run used them: the recorded values over each plugin's declared defaults, typed,
    so ``lambda=1`` given and ``lambda`` left at its default 1.0 are one setting, and a
    variant reads ``mode=relational``, not ``mode=default``.
    """
    # Older results.json files hold every plugin's options of the bench, not only this run's.
    plugins = config.strategy.split("+")
    return _plain({p: _as_run(p, config.strategy_options.get(p) or {}) for p in plugins})


def _as_run(plugin: str, recorded: dict[str, Any]) -> dict[str, Any]:
    from cl_ssl.options import field_key, parse_options
    from cl_ssl.registry import strategies

    try:
        options = parse_options(strategies.get(plugin).Options, recorded, plugin)
    except (KeyError, ValueError, TypeError, AttributeError):
        return dict(recorded)  # a plugin (or option) this cl-ssl does not know: as recorded
    return {field_key(k): v for k, v in asdict(options).items()}


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """JSON-normal values (Paths as str, tuples as lists), so files and objects compare."""
    return json.loads(json.dumps(values, default=str))


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[tuple[str, ...]]:
    """(setting, value in a, value in b) of every differing setting, nested names dotted.

    A setting one side does not record reads ``unknown``; a recorded group of settings
    against an unknown one reads ``recorded``.
    """
    differences = []
    for name in dict.fromkeys([*a, *b]):
        value_a, value_b = a.get(name, UNKNOWN), b.get(name, UNKNOWN)
        if isinstance(value_a, dict) and isinstance(value_b, dict):
            differences += _differences(value_a, value_b, f"{prefix}{name}.")
        elif value_a != value_b:
            differences.append((f"{prefix}{name}", _show(value_a), _show(value_b)))
    return differences


def _show(value: Any) -> str:
    return "recorded" if isinstance(value, dict) else str(value)


def _describe(differences: list[tuple[str, ...]], a: Path, b: Path) -> str:
    """``train.epochs 20 (a) vs 5 (b)``, or several settings then ``(a vs b)``."""
    if len(differences) == 1:
        name, value_a, value_b = differences[0]
        prefix = "" if name == "stream" else f"{name} "
        return f"{prefix}{value_a} ({a}) vs {value_b} ({b})"
    listed = ", ".join(f"{name} {value_a} vs {value_b}" for name, value_a, value_b in differences)
    return f"{listed} ({a} vs {b})"
