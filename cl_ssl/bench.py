"""Run strategies one after another on one stream and seed, and keep every result.

For each strategy run of a :class:`BenchConfig`, :func:`run_strategy` rebuilds the model
from the same seed, trains it experience by experience in :class:`SSLTemplate` with the
strategy's plugins, evaluates on every experience's test set after each one (and once
before training), and writes ``<out>/<run>/<strategy>/``: TensorBoard events, a tidy
``metrics.csv`` (rewritten after every experience, so a stopped run keeps what finished)
and ``results.json``.
"""

from __future__ import annotations

import json
import re
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
from cl_ssl.config import BenchConfig, TrainConfig
from cl_ssl.models.ssl_model import SSLModel
from cl_ssl.progress import ProgressPlugin
from cl_ssl.registry import backbones, methods, streams
from cl_ssl.reporting.tables import TIDY_COLUMNS, loss_increase, result_matrix
from cl_ssl.strategy import build_plugins, parse_spec, run_name
from cl_ssl.streams import SSLStream
from cl_ssl.template import SSLTemplate

_EXP_LOSS = re.compile(r"^Loss_Exp/eval_phase/test_stream/(?:Task\d+/)?Exp(\d+)$")


@dataclass
class StrategyResult:
    """What one strategy run produced."""

    name: str
    metrics: pd.DataFrame
    train_seconds: float
    eval_seconds: float
    images_seen: int
    directory: Path

    @property
    def images_per_second(self) -> float:
        """Training throughput: images (each two views) per second of training."""
        return self.images_seen / self.train_seconds if self.train_seconds else float("nan")

    @property
    def loss_matrix(self) -> pd.DataFrame:
        """The SSL-loss R matrix."""
        return result_matrix(self.metrics, "ssl_loss")


@dataclass
class BenchResult:
    """Every strategy's result and the run directory."""

    directory: Path
    strategies: list[StrategyResult]

    def summary(self) -> pd.DataFrame:
        """One row per strategy: final average SSL loss, its rise on old experiences, cost."""
        rows = []
        for r in self.strategies:
            matrix = r.loss_matrix
            rows.append(
                {
                    "strategy": r.name,
                    "final_ssl_loss": float(matrix.iloc[-1].mean()),
                    "ssl_loss_increase": loss_increase(matrix),
                    "train_s": round(r.train_seconds, 2),
                    "eval_s": round(r.eval_seconds, 2),
                    "images_per_s": round(r.images_per_second, 1),
                }
            )
        return pd.DataFrame(rows)


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
    # Same seed before building anything: every strategy starts from the same weights
    # and sees the same data order and augmentations.
    RNGManager.set_random_seeds(train.seed)
    model, method = build_model(train, stream.image_size)
    augment_config = replace(method.augment_config(stream.image_size), **stream.augment_overrides)
    augment = make_augment(train.augment, augment_config)
    if isinstance(augment, torch.nn.Module):
        augment.to(device)
    plugins = build_plugins(run, config.strategy_options)
    if config.progress:
        plugins.append(ProgressPlugin(name))
    evaluator = EvaluationPlugin(
        loss_metrics(epoch=True, experience=True, stream=True),
        loggers=[TensorboardLogger(directory)],
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
        eval_seed=train.seed,
    )
    benchmark = stream.benchmark
    rows: list[dict] = []
    train_seconds = eval_seconds = 0.0
    images_seen = 0

    def evaluate(after: int) -> None:
        nonlocal eval_seconds
        start = time.perf_counter()
        metrics = strategy.eval(benchmark.test_stream)
        eval_seconds += time.perf_counter() - start
        for key, value in metrics.items():
            match = _EXP_LOSS.match(key)
            if match:
                rows.append(
                    {
                        "strategy": name,
                        "seed": train.seed,
                        "metric": "ssl_loss",
                        "train_exp": after,
                        "eval_exp": int(match.group(1)),
                        "value": float(value),
                    }
                )
        pd.DataFrame(rows, columns=TIDY_COLUMNS).to_csv(directory / "metrics.csv", index=False)

    evaluate(-1)
    for experience in benchmark.train_stream:
        start = time.perf_counter()
        strategy.train(experience, eval_streams=[])
        train_seconds += time.perf_counter() - start
        images_seen += len(experience.dataset) * train.epochs
        evaluate(experience.current_experience)

    result = StrategyResult(
        name,
        pd.DataFrame(rows, columns=TIDY_COLUMNS),
        train_seconds,
        eval_seconds,
        images_seen,
        directory,
    )
    _write_results(result, config)
    for logger in evaluator.loggers:
        logger.writer.close()  # flush the event file now, not at interpreter exit
    return result


def _write_results(result: StrategyResult, config: BenchConfig) -> None:
    payload = {
        "strategy": result.name,
        "stream": config.stream,
        "train": asdict(config.train),
        "strategy_options": config.strategy_options,
        "train_seconds": result.train_seconds,
        "eval_seconds": result.eval_seconds,
        "images_per_second": result.images_per_second,
        "ssl_loss_matrix": result.loss_matrix.values.tolist(),
    }
    (result.directory / "results.json").write_text(json.dumps(payload, indent=2, default=str))


def run_bench(config: BenchConfig) -> BenchResult:
    """Run every strategy of ``config`` and write the run directory with its summary."""
    runs = parse_spec(config.strategies)  # fail on a bad name before loading any data
    stream_factory = streams.get(config.stream)
    resolve_device(config.train.device)
    stream = stream_factory(config.stream_options)
    run = config.run_name or f"{config.stream}-{datetime.now():%Y%m%d-%H%M%S}"
    directory = Path(config.out) / run
    results = [run_strategy(stream, r, config, directory / run_name(r)) for r in runs]
    bench = BenchResult(directory, results)
    summary = bench.summary()
    summary.to_csv(directory / "summary.csv", index=False)
    (directory / "summary.md").write_text(summary.to_markdown(index=False, floatfmt=".4f") + "\n")
    return bench
