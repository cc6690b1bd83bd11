"""Run strategies one after another on one stream, for one or more seeds, and keep every result.

For each seed and each strategy run of a :class:`BenchConfig` (seed-major, so the first
seed's full comparison is on disk before the second starts), :func:`run_strategy` rebuilds
the model from that seed, trains it experience by experience in :class:`SSLTemplate` with
the strategy's plugins, evaluates on every experience's test (or validation) split after
each one (and once before training: the FWT baseline), and writes
``<out>/<run>/<strategy>/seed<s>/``:

- ``config.json``: the run's full configuration, written before training starts,
- TensorBoard events (Avalanche's logger; identical tags across strategies, a custom-scalars
  layout and an hparams entry),
- ``metrics.csv``: tidy rows (strategy, seed, metric, train_exp, eval_exp, value),
  rewritten after every experience so a stopped run keeps what finished,
- ``checkpoints/exp<k>.pt``: the model after experience k (:func:`cl_ssl.load_encoder`),
- ``results.json``: config, timings, every metric's R matrix and figures.

The bench directory gets ``summary.md``/``summary.csv`` (one row per strategy, mean ± std
over seeds, ranked by the final all-classes accuracy), ``summary_stats.csv`` (mean, std
and 95% interval of every figure) and ``plots/`` (learning curves, forgetting bars, R
heatmaps). Data splits and class order come from ``--split-seed`` and stay fixed across
training seeds, so the spread over seeds is training variance.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

import pandas as pd
import torch
from avalanche.evaluation.metrics import loss_metrics
from avalanche.logging import TensorboardLogger
from avalanche.training.determinism.rng_manager import RNGManager
from avalanche.training.plugins import EvaluationPlugin

from cl_ssl.augment import make_augment
from cl_ssl.checkpoint import CheckpointInfo, save_checkpoint
from cl_ssl.config import BenchConfig, TrainConfig
from cl_ssl.evaluation.continual import tidy_figures, tidy_matrix
from cl_ssl.evaluation.metrics import (
    EXPERIENCE_TAG,
    STREAM_TAG,
    UNION,
    ContinualFigures,
    RepresentationMetrics,
    tidy_metric_name,
)
from cl_ssl.models.ssl_model import SSLModel
from cl_ssl.progress import ProgressPlugin
from cl_ssl.registry import backbones, methods, streams
from cl_ssl.reporting.plots import write_plots
from cl_ssl.reporting.summary import headline_table, summary_stats
from cl_ssl.reporting.tables import TIDY_COLUMNS, result_matrix
from cl_ssl.reporting.tensorboard import write_hparams, write_layout
from cl_ssl.strategy import build_plugins, check_options, parse_spec, run_name
from cl_ssl.streams import SSLStream
from cl_ssl.template import SSLTemplate


@dataclass
class StrategyResult:
    """What one strategy run produced."""

    name: str
    metrics: pd.DataFrame
    train_seconds: float
    eval_seconds: float
    images_seen: int
    directory: Path
    representation_seconds: float = 0.0
    steps: int = 0
    seed: int = 0

    @property
    def ms_per_step(self) -> float:
        """Mean training step time (all plugins' work included), in milliseconds."""
        return 1000 * self.train_seconds / self.steps if self.steps else float("nan")

    @property
    def images_per_step(self) -> float:
        """Mean images (each two views) per training step: replay's compute shows here."""
        return self.images_seen / self.steps if self.steps else float("nan")

    @property
    def images_per_second(self) -> float:
        """Training throughput: images (each two views) per second of training."""
        return self.images_seen / self.train_seconds if self.train_seconds else float("nan")

    @property
    def loss_matrix(self) -> pd.DataFrame:
        """The SSL-loss R matrix."""
        return result_matrix(self.metrics, "ssl_loss")

    def matrix(self, metric: str) -> pd.DataFrame:
        """The R matrix of ``metric`` (``ssl_loss``, ``knn20``, ``linear``, ``nmi``, ...)."""
        return result_matrix(self.metrics, metric)

    @property
    def metric_names(self) -> list[str]:
        """Metrics this run measured, in measurement order."""
        return list(dict.fromkeys(self.metrics["metric"]))

    def timings(self) -> dict:
        """The run's timing row for :func:`cl_ssl.reporting.report.headline_table`."""
        return {
            "strategy": self.name,
            "seed": self.seed,
            "train_s": self.train_seconds,
            "eval_s": self.eval_seconds,
            "images_per_s": self.images_per_second,
            "ms_per_step": self.ms_per_step,
            "images_per_step": self.images_per_step,
        }


@dataclass
class BenchResult:
    """Every (strategy, seed) result and the run directory."""

    directory: Path
    strategies: list[StrategyResult]

    @property
    def tidy(self) -> pd.DataFrame:
        """Every strategy's tidy rows."""
        return pd.concat([r.metrics for r in self.strategies], ignore_index=True)

    @property
    def timings(self) -> pd.DataFrame:
        """One timing row per (strategy, seed)."""
        return pd.DataFrame([r.timings() for r in self.strategies])

    def summary(self, numeric: bool = True) -> pd.DataFrame:
        """One row per strategy: stability and plasticity figures side by side, and cost."""
        return headline_table(self.tidy, self.timings, numeric=numeric)


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA GPU is visible: use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device '{device}'; choose from: auto, cpu, cuda")
    return torch.device(device)


def build_model(train: TrainConfig, image_size: int) -> tuple[SSLModel, object]:
    """Backbone + the method's head, and the method itself (registry lookups)."""
    method = methods.get(train.method)()
    backbone = backbones.get(train.backbone)(image_size)
    return SSLModel(backbone, method.make_head(backbone.feature_dim)), method


def make_optimizer(train: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer named by ``train.optimizer`` over ``model``'s parameters."""
    if train.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=train.lr, momentum=0.9, weight_decay=train.weight_decay
        )
    return torch.optim.Adam(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)


def run_strategy(
    stream: SSLStream,
    run: tuple[str, ...],
    config: BenchConfig,
    directory: Path,
) -> StrategyResult:
    """Train and evaluate one (composed) strategy over the whole stream."""
    train = config.train
    name = run_name(run)
    directory.mkdir(parents=True, exist_ok=True)
    device = resolve_device(train.device)
    _write_json(directory / "config.json", run_config(config, stream, name))
    # Same seed before building anything: every strategy starts from the same weights;
    # the template reseeds each experience from (seed, k) so data order and views match too.
    RNGManager.set_random_seeds(train.seed)
    model, method = build_model(train, stream.image_size)
    augment_config = replace(method.augment_config(stream.image_size), **stream.augment_overrides)
    augment = make_augment(train.augment, augment_config)
    if isinstance(augment, torch.nn.Module):
        augment.to(device)
    plugins = build_plugins(run, config.strategy_options)
    if config.progress:
        plugins.append(ProgressPlugin(name))
    representation = RepresentationMetrics(stream.experiences, augment, config.evaluation)
    tensorboard = TensorboardLogger(directory)
    evaluator = EvaluationPlugin(
        loss_metrics(epoch=True, experience=True, stream=True),
        representation,
        ContinualFigures(),
        loggers=[tensorboard],
    )
    strategy = SSLTemplate(
        model=model,
        optimizer=make_optimizer(train, model),
        method=method,
        augment=augment,
        train_mb_size=train.batch_size,
        train_epochs=train.epochs,
        eval_mb_size=train.eval_batch_size,
        device=device,
        plugins=plugins,
        evaluator=evaluator,
        eval_seed=config.stream_options.split_seed,
        train_seed=train.seed,
    )
    benchmark = stream.benchmark
    rows: list[dict] = []
    train_seconds = eval_seconds = 0.0

    tag_names: dict[str, None] = {}  # Avalanche metric names measured, in order

    def evaluate(after: int) -> None:
        nonlocal eval_seconds
        start = time.perf_counter()
        metrics = strategy.eval(benchmark.test_stream)
        eval_seconds += time.perf_counter() - start
        for key, value in metrics.items():
            match = EXPERIENCE_TAG.match(key) or STREAM_TAG.match(key)
            if match:
                tag_names[match["name"]] = None
                rows.append(
                    {
                        "strategy": name,
                        "seed": train.seed,
                        "metric": tidy_metric_name(match["name"]),
                        "train_exp": after,
                        "eval_exp": int(match["j"]) if "j" in match.groupdict() else UNION,
                        "value": float(value),
                    }
                )
        # Temp file + rename: a run stopped mid-write still has the previous complete table.
        partial = directory / "metrics.csv.partial"
        pd.DataFrame(rows, columns=TIDY_COLUMNS).to_csv(partial, index=False)
        os.replace(partial, directory / "metrics.csv")

    evaluate(-1)
    write_layout(tensorboard.writer, list(tag_names))
    for experience in benchmark.train_stream:
        start = time.perf_counter()
        strategy.train(experience, eval_streams=[])
        train_seconds += time.perf_counter() - start
        k = experience.current_experience
        if config.evaluation.checkpoints:
            info = CheckpointInfo(
                train.backbone, train.method, stream.image_size, name, k, train.seed
            )
            save_checkpoint(
                directory / "checkpoints" / f"exp{k}.pt", strategy.model, info, augment_config
            )
        evaluate(k)

    result = StrategyResult(
        name,
        pd.DataFrame(rows, columns=TIDY_COLUMNS),
        train_seconds,
        eval_seconds,
        strategy.images_trained,
        directory,
        representation.seconds,
        strategy.steps_trained,
        train.seed,
    )
    figures = _write_results(result, config, stream)
    tensorboard.writer.close()  # flush the event file now, not at interpreter exit
    hparams = {
        "strategy": name,
        "stream": config.stream,
        "eval_split": stream.eval_split,
        "split_seed": config.stream_options.split_seed,
        **asdict(train),
    }
    for plugin_name, options in config.strategy_options.items():
        if plugin_name in run:
            hparams.update({f"{plugin_name}.{k}": v for k, v in options.items()})
    final = {
        f"{row.metric}_{figure}": getattr(row, figure)
        for row in figures.itertuples()
        for figure in ("final_union", "final", "forgetting", "plasticity", "bwt")
        if pd.notna(getattr(row, figure))
    }
    write_hparams(directory, hparams, final)
    return result


def _write_results(result: StrategyResult, config: BenchConfig, stream: SSLStream) -> pd.DataFrame:
    figures = tidy_figures(result.metrics)
    matrices = {}
    for metric in result.metric_names:
        R, baseline = tidy_matrix(result.metrics, metric)
        matrices[metric] = {
            "R": _json_floats(R),
            "untrained": None if baseline is None else _json_floats(baseline),
        }
    payload = {
        **run_config(config, stream, result.name),
        "experiences": stream.num_experiences,
        "train_seconds": result.train_seconds,
        "eval_seconds": result.eval_seconds,
        "representation_eval_seconds": result.representation_seconds,
        "images_per_second": result.images_per_second,
        "steps": result.steps,
        "images_per_step": result.images_per_step,
        "ms_per_step": result.ms_per_step,
        "matrices": matrices,
        "figures": {
            row["metric"]: {k: _json_float(v) for k, v in row.items() if k != "metric"}
            for row in figures.to_dict("records")
        },
    }
    _write_json(result.directory / "results.json", payload)
    return figures


def run_config(config: BenchConfig, stream: SSLStream, strategy: str) -> dict:
    """Everything that defines one (strategy, seed) run, as JSON-ready values."""
    names = set(strategy.split("+"))
    return {
        "strategy": strategy,
        "stream": config.stream,
        "stream_options": asdict(config.stream_options),
        "split_seed": config.stream_options.split_seed,
        "eval_split": stream.eval_split,
        "train": asdict(config.train),
        "evaluation": asdict(config.evaluation),
        "strategy_options": {k: v for k, v in config.strategy_options.items() if k in names},
    }


def _write_json(path: Path, payload: dict) -> None:
    # Temp file + rename: a reader never sees half a file.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(partial, path)


def _json_float(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def _json_floats(values) -> list:
    return [_json_floats(v) if hasattr(v, "__len__") else _json_float(v) for v in values]


def run_bench(config: BenchConfig) -> BenchResult:
    """Run every strategy of ``config`` for every seed; write the run directory and summary."""
    runs = parse_spec(config.strategies)  # fail on a bad name or option before loading data
    check_options(runs, config.strategy_options)
    stream_factory = streams.get(config.stream)
    resolve_device(config.train.device)
    if config.run_name:
        check_run_directory(Path(config.out) / config.run_name, config.overwrite)
    stream = stream_factory(config.stream_options)
    directory = make_run_directory(config)
    results = []
    for seed in config.seeds:
        seeded = replace(config, train=replace(config.train, seed=seed))
        for r in runs:
            path = directory / run_name(r) / f"seed{seed}"
            results.append(run_strategy(stream, r, seeded, path))
    bench = BenchResult(directory, results)
    write_summary(bench, stream)
    write_plots(bench.tidy, directory / "plots")
    return bench


def check_run_directory(directory: Path, overwrite: bool) -> None:
    """Refuse a run directory that already holds results, unless ``overwrite``."""
    if directory.exists() and any(directory.rglob("metrics.csv")) and not overwrite:
        raise ValueError(
            f"{directory} already holds results: pass --overwrite to replace them, or --run "
            "NAME for a new run"
        )


def make_run_directory(config: BenchConfig) -> Path:
    """The run's directory, created now: emptied with ``overwrite``, unique when unnamed.

    An unnamed run gets ``<stream>-<time>``, with ``-2``, ``-3``, ... when that exists
    (two benches started in the same second never share a folder: ``mkdir`` is atomic).
    """
    out = Path(config.out)
    if config.run_name:
        directory = out / config.run_name
        check_run_directory(directory, config.overwrite)
        if config.overwrite and directory.exists():
            shutil.rmtree(directory)  # replace, never mix old and new results
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    out.mkdir(parents=True, exist_ok=True)
    base = f"{config.stream}-{datetime.now():%Y%m%d-%H%M%S}"
    for n in itertools.count(1):
        directory = out / (base if n == 1 else f"{base}-{n}")
        try:
            directory.mkdir()
            return directory
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def write_summary(bench: BenchResult, stream: SSLStream) -> None:
    """``summary.md`` (with the protocol named), ``summary.csv`` and ``summary_stats.csv``."""
    directory = bench.directory
    bench.summary().to_csv(directory / "summary.csv", index=False)
    summary_stats(bench.tidy, bench.timings).to_csv(directory / "summary_stats.csv", index=False)
    seeds = sorted({r.seed for r in bench.strategies})
    header = (
        f"Stream `{stream.name}`, evaluated on the {stream.eval_split} splits; "
        f"seeds {', '.join(map(str, seeds))} (mean ± std over seeds). Accuracies use the "
        "all-classes protocol (kNN bank and linear probe over every experience's training "
        "images, scored on the union of the evaluation splits) unless marked per-experience."
    )
    table = bench.summary(numeric=False).to_markdown(index=False)
    (directory / "summary.md").write_text(f"{header}\n\n{table}\n")
