"""What a strategy run was configured with, read back from its directory or a checkpoint.

``clssl bench`` writes ``<out>/<run>/<strategy>/seed<s>/config.json`` when a strategy run
starts (and ``results.json``, holding the same keys, when it ends). Tools that must rebuild
the run's stream exactly (``clssl finetune``, to keep the images it trained on out of the
labeled data) or check that runs are comparable (``clssl report``) read it with
:func:`load_run_config`. Runs written before ``config.json`` existed fall back to
``results.json``; what they do not record (``stream_options``, ``split_seed``) is None. A
checkpoint copied out of its run folder holds the same configuration (format 2), read when no
file is next to it.

Example:
    >>> config = load_run_config(Path("runs/demo/naive/seed0/checkpoints/exp4.pt"))
    >>> stream = streams.get(config.stream)(config.stream_options)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cl_ssl.config import StreamOptions

CONFIG_FILES = ("config.json", "results.json")
EVALUATION_BEFORE = {"probe_backend": "sklearn"}
"""Evaluation settings runs did not record before they existed, as those runs had them."""


def recorded_evaluation(values: dict[str, Any] | None) -> dict[str, Any]:
    """A run's recorded evaluation settings, older runs' gaps filled (:data:`EVALUATION_BEFORE`)."""
    return {**EVALUATION_BEFORE, **values} if values else {}


@dataclass(frozen=True)
class RunConfig:
    """The settings of one strategy run (one strategy, one seed).

    Attributes:
        path: The file this was read from (``config.json`` or ``results.json``).
        stream: Stream registry name.
        stream_options: The options the stream was built with; None when the file does not
            record them (runs written before ``config.json``).
        train: ``TrainConfig`` fields as written (epochs, batch_size, ..., seed).
        evaluation: ``EvalConfig`` fields as written.
        strategy: Strategy name, e.g. ``lwf-ssl+replay``.
        strategy_options: Per-plugin options of the bench, ``{"lwf-ssl": {"lambda": "1"}}``.
        split_seed: Seed of the stream's train/test (and val) splits; None when unknown.
        eval_split: Split the run was evaluated on, ``test`` or ``val``.
        ignored_options: Stream options in the file that this version's
            :class:`StreamOptions` does not have (newer runs), with their values.
    """

    path: Path
    stream: str
    stream_options: StreamOptions | None
    train: dict[str, Any]
    evaluation: dict[str, Any]
    strategy: str
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    split_seed: int | None = None
    eval_split: str = "test"
    ignored_options: dict[str, Any] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        """The strategy run's directory."""
        return self.path.parent


def run_directory(directory_or_checkpoint: Path) -> Path:
    """The strategy run directory of a run directory or of ``<dir>/checkpoints/exp<k>.pt``."""
    path = Path(directory_or_checkpoint)
    if path.suffix == ".pt" and path.parent.name == "checkpoints":
        return path.parent.parent
    return path if path.is_dir() else path.parent


def find_config_file(directory_or_checkpoint: Path) -> Path | None:
    """``config.json`` of the run, else its ``results.json``, else None."""
    directory = run_directory(directory_or_checkpoint)
    for name in CONFIG_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def load_run_config(directory_or_checkpoint: Path) -> RunConfig:
    """The configuration of a strategy run, from its directory or one of its checkpoints.

    Args:
        directory_or_checkpoint: ``<out>/<run>/<strategy>/seed<s>`` (or any directory that
            holds a ``config.json``/``results.json``), or a ``checkpoints/exp<k>.pt`` in it.
            A checkpoint copied out of its run gives the configuration it holds (format 2).

    Raises:
        FileNotFoundError: Neither ``config.json`` nor ``results.json`` is there, nor a
            configuration in the checkpoint.
        ValueError: The file is not valid JSON or lacks the keys every run writes.
    """
    path = find_config_file(directory_or_checkpoint)
    if path is None:
        path = Path(directory_or_checkpoint)
        payload = _checkpoint_config(path)
        if payload is None:
            held = f" and {path.name} holds no run configuration" if path.is_file() else ""
            raise FileNotFoundError(
                f"no config.json or results.json in {run_directory(path)}{held}: pass a "
                "checkpoint or run directory written by `clssl bench`"
            )
    else:
        try:
            payload = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(
                f"{path} is not readable JSON ({error.__class__.__name__}): rerun the bench "
                "or restore the file"
            ) from None
    if not isinstance(payload, dict):
        payload = {}
    missing = [k for k in ("stream", "train", "strategy") if k not in payload]
    if missing:
        raise ValueError(
            f"{path} is not a cl-ssl run config (lacks {', '.join(missing)}): "
            "pass a run written by `clssl bench`"
        )
    options, ignored = None, {}
    if isinstance(payload.get("stream_options"), dict):
        options, ignored = stream_options_from_dict(payload["stream_options"])
    split_seed = payload.get("split_seed")
    if split_seed is None and isinstance(payload.get("stream_options"), dict):
        split_seed = payload["stream_options"].get("split_seed")
    return RunConfig(
        path=path,
        stream=str(payload["stream"]),
        stream_options=options,
        train=dict(payload["train"]),
        evaluation=recorded_evaluation(payload.get("evaluation")),
        strategy=str(payload["strategy"]),
        strategy_options=dict(payload.get("strategy_options") or {}),
        split_seed=None if split_seed is None else int(split_seed),
        # Runs written before the val split existed were all evaluated on the test split.
        eval_split=str(payload.get("eval_split") or "test"),
        ignored_options=ignored,
    )


def _checkpoint_config(path: Path) -> Any:
    """The run configuration a checkpoint file holds (format 2), else None."""
    if path.suffix != ".pt" or not path.is_file():
        return None
    from cl_ssl.checkpoint import _read  # the one reader of checkpoint files

    text = _read(path).get("config")
    return json.loads(text) if text else None


def stream_options_from_dict(values: dict[str, Any]) -> tuple[StreamOptions, dict[str, Any]]:
    """A :class:`StreamOptions` from its JSON form, and the keys it does not know.

    Path fields come back as :class:`~pathlib.Path`. Unknown keys (a run of a newer
    cl-ssl) are returned rather than dropped, so callers that must rebuild the very same
    stream can refuse when one of them is set.
    """
    known = {f.name: f for f in fields(StreamOptions)}
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known:
            continue
        # Annotations are strings under `from __future__ import annotations`.
        if value is not None and "Path" in str(known[name].type):
            value = Path(value)
        elif name == "extra":
            value = dict(value or {})
        kwargs[name] = value
    ignored = {k: v for k, v in values.items() if k not in known}
    return StreamOptions(**kwargs), ignored


def bench_config_to_dict(config: Any) -> dict[str, Any]:
    """A :class:`~cl_ssl.config.BenchConfig` as JSON-ready values (``bench.json``)."""
    from dataclasses import asdict

    payload = asdict(config)
    payload["out"] = str(config.out)
    return payload


def load_bench_config(directory: Path) -> Any:
    """The :class:`~cl_ssl.config.BenchConfig` a bench wrote to ``<run>/bench.json``.

    ``out`` and ``run_name`` point at ``directory`` wherever it was moved.

    Raises:
        FileNotFoundError: ``directory`` has no ``bench.json``.
        ValueError: The file is not a bench configuration this version reads.
    """
    directory = Path(directory)
    path = directory / "bench.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: --resume takes a run directory written by `clssl bench`"
        )
    try:
        payload = json.loads(path.read_text())
        return bench_config_from_dict(payload, directory.parent, directory.name)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{path} is not a bench configuration this cl-ssl reads ({error!r}): finish the run "
            "with the cl-ssl version that started it"
        ) from None


def bench_config_from_dict(payload: dict[str, Any], out: Path, run_name: str | None) -> Any:
    """The :class:`~cl_ssl.config.BenchConfig` of :func:`bench_config_to_dict`'s values.

    Raises:
        ValueError, KeyError, TypeError: Values this version does not read.
    """
    from cl_ssl.config import BenchConfig, EvalConfig, TrainConfig

    options, ignored = stream_options_from_dict(payload["stream_options"])
    if ignored:
        raise ValueError(f"stream options {sorted(ignored)} unknown to this cl-ssl")
    evaluation = {
        k: tuple(v) if isinstance(v, list) else v for k, v in payload["evaluation"].items()
    }
    return BenchConfig(
        stream=payload["stream"],
        strategies=payload["strategies"],
        train=TrainConfig(**payload["train"]),
        evaluation=EvalConfig(**evaluation),
        stream_options=options,
        strategy_options={k: dict(v) for k, v in payload["strategy_options"].items()},
        out=Path(out),
        run_name=run_name,
        progress=bool(payload.get("progress", True)),
        training_seeds=tuple(payload.get("training_seeds") or ()),
        launcher=payload.get("launcher", "inline"),
        jobs=int(payload.get("jobs", 1)),
        threads_per_job=payload.get("threads_per_job"),
        address=payload.get("address"),
        gpus_per_run=payload.get("gpus_per_run"),
        cpus_per_run=payload.get("cpus_per_run"),
        max_retries=payload.get("max_retries"),
    )
