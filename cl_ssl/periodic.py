"""Train a deployed embedding on the next period: ``clssl continue``.

The production cycle: a bench (or an earlier ``continue``) left ``checkpoints/exp<k>.pt``
holding the embedding and its full training state. When a new period of frames arrives,
:func:`continue_training` rebuilds that run from the checkpoint alone (strategy, options,
recipe, seed), loads the state (the loaded model becomes LwF-SSL's teacher, EWC keeps its
importances, replay its buffer), trains the new experiences only, evaluates after each on
every experience of the stream whose evaluation split is there, and writes
``exp<k+1>.pt``, ``metrics.csv`` and ``results.json`` beside the previous ones, so the
history of a deployed embedding reads as one continual run.

Experience numbers are the stream's: pass the stream with every period so far (for
``twitch-periods``, the same manifest with one more ``--periods`` entry), and the new
period is experience k + 1. Continuing from exp<k> of a bench on the same stream gives
exactly the metrics the uninterrupted bench has. On a grown (or otherwise changed) stream,
the checkpoint's rows were measured with another stream's banks, probes and splits: the
untrained model and every earlier ``exp<i>.pt`` are measured again on the new stream first
(:meth:`StrategyRun.remeasure`), so one matrix never mixes two evaluation setups; the old
rows stay as ``metrics.upto-exp<k>.csv``.

Example:
    >>> result = continue_training(ContinueConfig(
    ...     checkpoint=Path("runs/deployed/lwf-ssl/seed0/checkpoints/exp1.pt"),
    ...     stream_options={"periods": "2021-01-01/2021-07-01,...,2022-01-01/2022-07-01"}))
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from cl_ssl.atomic import write_bytes
from cl_ssl.checkpoint import load_training_state
from cl_ssl.config import BenchConfig, ContinueConfig, EvalConfig, TrainConfig
from cl_ssl.outputs import BENCH_FILE, METRICS_FILE
from cl_ssl.registry import streams
from cl_ssl.results import StrategyResult
from cl_ssl.run_config import recorded_evaluation, run_directory, stream_options_from_dict
from cl_ssl.run_lock import holding
from cl_ssl.strategy import parse_spec
from cl_ssl.strategy_run import StrategyRun, purge_step
from cl_ssl.streams import StreamOptions


def checkpoint_bench_config(run: dict[str, Any]) -> BenchConfig:
    """The one-strategy :class:`BenchConfig` a checkpoint's run configuration describes."""
    options, ignored = stream_options_from_dict(run["stream_options"])
    if ignored:
        raise ValueError(
            f"the checkpoint's stream options {sorted(ignored)} are unknown to this cl-ssl: "
            "continue with the version that wrote it"
        )
    recorded = recorded_evaluation(run["evaluation"])
    evaluation = {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()}
    return BenchConfig(
        stream=run["stream"],
        strategies=run["strategy"],
        train=TrainConfig(**run["train"]),
        evaluation=EvalConfig(**evaluation),
        stream_options=options,
        strategy_options={k: dict(v) for k, v in run["strategy_options"].items()},
    )


def continue_training(config: ContinueConfig) -> StrategyResult:
    """Train the checkpoint's run on new experiences; write them beside the previous ones.

    Raises:
        ValueError: No experience to train, an image size other than the checkpoint's, or
            a checkpoint for one of the experiences already exists in the output directory.
        RunInUse: Another ``clssl continue`` or ``clssl bench`` is writing the directory
            (:func:`writer_directory`).
        StrategyFailed: Training failed; the failure is on disk, earlier checkpoints stay.
    """
    state, info, run = load_training_state(config.checkpoint)
    bench = checkpoint_bench_config(run)
    checkpoint_options = bench.stream_options
    options = checkpoint_options if config.stream in (None, bench.stream) else StreamOptions()
    known = {f.name for f in fields(StreamOptions)}
    unknown = sorted(set(config.stream_options) - known)
    if unknown:
        raise ValueError(f"unknown stream option(s) {unknown}; choose from: {sorted(known)}")
    bench = replace(
        bench,
        stream=config.stream or bench.stream,
        stream_options=replace(options, **config.stream_options),
        progress=config.progress,
        train=replace(bench.train, device=config.device or bench.train.device),
    )
    directory = Path(config.out) if config.out else run_directory(config.checkpoint)
    stream = streams.get(bench.stream)(bench.stream_options)
    if stream.image_size != info.image_size:
        raise ValueError(
            f"the stream's images are {stream.image_size} px, the checkpoint was trained at "
            f"{info.image_size} px: pass --image-size {info.image_size}"
        )
    todo = config.experiences or tuple(range(info.experience + 1, stream.num_experiences))
    if not todo:
        raise ValueError(
            f"the stream has {stream.num_experiences} experience(s) and the checkpoint was "
            f"trained through experience {info.experience}: give the stream the new period "
            "(e.g. one more --periods entry) or name --experiences"
        )
    bad = [k for k in todo if not 0 <= k < stream.num_experiences]
    if bad:
        raise ValueError(f"--experiences {bad} not in the stream's 0..{stream.num_experiences - 1}")
    directory.mkdir(parents=True, exist_ok=True)
    # One writer at a time: checked under the lock, so two continues of one deployment
    # cannot both find exp<k+1>.pt missing and train it over each other.
    with holding(writer_directory(directory)):
        existing = [k for k in todo if (directory / "checkpoints" / f"exp{k}.pt").exists()]
        if existing:
            raise ValueError(
                f"{directory} already has checkpoints/exp{existing[0]}.pt: pass --out NEW_DIR "
                "to keep both histories"
            )
        grown = (bench.stream, bench.stream_options) != (run["stream"], checkpoint_options)
        _keep_previous_config(directory, info.experience, grown)
        (names,) = parse_spec(bench.strategies)
        strategy_run = StrategyRun(stream, names, bench, directory, purge_step(state))
        if grown:  # the checkpoint's rows were measured on another setup: measure them again
            strategy_run.remeasure(_history(Path(config.checkpoint).parent, info.experience))
        strategy_run.restore(state, info.experience, remeasured=grown)
        return strategy_run.train([stream.benchmark.train_stream[k] for k in todo])


def writer_directory(directory: Path) -> Path:
    """The directory whose lock a continue writing ``directory`` holds.

    The bench's run directory when ``directory`` is one of its ``<strategy>/seed<s>`` folders
    (so a continue and a ``clssl bench --resume`` or ``--overwrite`` of that bench exclude
    each other, as two benches do), else ``directory`` itself.
    """
    run = directory.parent.parent
    return run if (run / BENCH_FILE).is_file() else directory


def _history(checkpoints: Path, experience: int) -> Iterator[tuple[int, dict]]:
    """``(k, training state)`` of ``exp0.pt`` .. ``exp<experience>.pt`` found in ``checkpoints``.

    One at a time (a state holds the model, optimizer and plugin buffers). A missing one is
    skipped: its row stays absent rather than measured on another setup.
    """
    for k in range(experience + 1):
        path = checkpoints / f"exp{k}.pt"
        if path.is_file():
            yield k, load_training_state(path)[0]
        else:
            warnings.warn(
                f"{path} is missing: experience {k}'s row is left out of the history measured "
                "again on the grown stream",
                stacklevel=2,
            )


def _keep_previous_config(directory: Path, experience: int, metrics: bool) -> None:
    """What the earlier experiences trained (and were measured) with stays beside the new.

    ``config.upto-exp<k>.json``; with ``metrics`` (the stream grew, so the history is
    measured again), the rows measured on the earlier stream as ``metrics.upto-exp<k>.csv``.
    """
    kept = [("config.json", f"config.upto-exp{experience}.json")]
    if metrics:
        kept.append((METRICS_FILE, f"metrics.upto-exp{experience}.csv"))
    for name, copy in kept:
        current, target = directory / name, directory / copy
        if current.is_file() and not target.exists():
            write_bytes(target, current.read_bytes(), durable=True)
