"""One (strategy, seed) run: build it, train experience by experience, checkpoint, evaluate.

:class:`StrategyRun` owns the lifecycle that ``clssl bench``, ``clssl bench --resume`` and
``clssl continue`` share:

- built from the seed (same weights for every strategy), the strategy's plugins, the
  evaluator and a TensorBoard logger in the run directory;
- :meth:`StrategyRun.evaluate` after each experience (and once before training: the FWT
  baseline) on every experience's evaluation split, appending tidy rows to
  ``metrics.csv``;
- :meth:`StrategyRun.train` trains the given experiences; after each, it evaluates and
  writes ``checkpoints/exp<k>.pt`` holding the encoder *and* the full training state
  (:mod:`cl_ssl.state`), the metrics rows included;
- :meth:`StrategyRun.restore` loads such a checkpoint into the freshly built run: the next
  experience trains exactly as it would have without the interruption;
- with ``--checkpoint-every``, :meth:`StrategyRun.save_within` also writes
  ``checkpoints/within.pt`` inside each experience and :meth:`StrategyRun.resume_within`
  goes on from it, mid-epoch included (:mod:`cl_ssl.interim`);
- any exception while training, evaluating or writing (a full disk included) becomes
  :class:`StrategyFailed`, carrying where it stopped (experience, epoch, step); the last
  good checkpoint stays.

Under torchrun (:mod:`cl_ssl.distributed`) every rank builds and trains the run on its
shard (B / N images per step); rank 0 alone evaluates and writes (config, metrics,
TensorBoard, checkpoints, results), and the others wait for it after every experience.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import torch
from avalanche.training.determinism.rng_manager import RNGManager
from avalanche.training.plugins import EvaluationPlugin
from lightly.models.utils import get_weight_decay_parameters

from cl_ssl import distributed
from cl_ssl.atomic import unless_disk_full
from cl_ssl.augment import make_augment
from cl_ssl.checkpoint import CheckpointInfo, save_checkpoint
from cl_ssl.config import BenchConfig, EvalConfig, TrainConfig
from cl_ssl.data.files import ImageFileDataset
from cl_ssl.evaluation.linear_probe import resolve_probe_backend
from cl_ssl.evaluation.loss import loss_metrics
from cl_ssl.evaluation.metrics import (
    EXPERIENCE_TAG,
    STREAM_TAG,
    UNION,
    ContinualFigures,
    RepresentationMetrics,
    tidy_metric_name,
)
from cl_ssl.evaluation.training_health import TrainingHealth
from cl_ssl.interim import WITHIN_FILE, InterimCheckpoints, Position, parse_every
from cl_ssl.lars import LARS, NO_DECAY
from cl_ssl.methods import SSLMethod, build_method
from cl_ssl.models.ssl_model import SSLModel
from cl_ssl.outputs import write_failure, write_json, write_metrics, write_results
from cl_ssl.precision import resolve_channels_last, resolve_precision
from cl_ssl.progress import ProgressPlugin
from cl_ssl.registry import backbones
from cl_ssl.reporting.tables import TIDY_COLUMNS
from cl_ssl.reporting.tensorboard import ResumableTensorboardLogger, write_hparams, write_layout
from cl_ssl.results import StrategyFailure, StrategyResult
from cl_ssl.run_config import recorded_evaluation
from cl_ssl.state import (
    capture,
    generators,
    random_state,
    restore,
    restore_plugins,
    restore_within,
)
from cl_ssl.strategy import build_plugins, run_name
from cl_ssl.streams import SSLStream
from cl_ssl.template import NonFiniteLoss, SSLTemplate


class StrategyFailed(Exception):
    """A run stopped with an error; :attr:`failure` says where and why."""

    def __init__(self, failure: StrategyFailure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA GPU is visible: use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device '{device}'; choose from: auto, cpu, cuda")
    return torch.device(device)


def build_model(train: TrainConfig, image_size: int) -> tuple[SSLModel, SSLMethod]:
    """Backbone + the method's head (and predictor), and the method itself.

    ``train.compile`` compiles the backbone in place (``nn.Module.compile``): its
    ``state_dict`` keys stay the plain module's, so checkpoints load either way.
    """
    method = build_method(train.method, train.method_options)
    backbone = backbones.get(train.backbone)(image_size)
    head = method.make_head(backbone.feature_dim)
    if train.compile:
        backbone.compile()
    return SSLModel(backbone, head, method.make_predictor()), method


def make_optimizer(train: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer named by ``train.optimizer``; BatchNorm and bias weights never decay.

    Group 0 holds the decayed weights, group 1 (:data:`cl_ssl.lars.NO_DECAY`: weight decay 0,
    not LARS-adapted) the BatchNorm and bias parameters (Lightly's
    ``get_weight_decay_parameters``). ``lars`` is solo-learn's (:mod:`cl_ssl.lars`: trust
    coefficient 0.02, clipped rate, adapted whatever the weight decay, 0 included).
    """
    decay, no_decay = get_weight_decay_parameters([model])
    groups = [{"params": decay}] + ([{"params": no_decay, **NO_DECAY}] if no_decay else [])
    if train.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay
        )
    if train.optimizer == "lars":
        return LARS(groups, lr=train.lr, momentum=train.momentum, weight_decay=train.weight_decay)
    return torch.optim.Adam(groups, lr=train.lr, weight_decay=train.weight_decay)


def local_batch_size(batch_size: int, ranks: int | None = None) -> int:
    """Images per step on this rank: the global ``--batch-size`` split evenly over ``ranks``.

    ``ranks`` None: the running group's size (before it starts, pass
    :func:`cl_ssl.distributed.planned_world_size`).
    """
    ranks = distributed.world_size() if ranks is None else ranks
    if batch_size % ranks:
        raise ValueError(
            f"--batch-size {batch_size} is the global batch and must split evenly over the "
            f"{ranks} processes: pass a multiple of {ranks}"
        )
    return batch_size // ranks


def loader_options(workers: int | None, stream: SSLStream, device: torch.device) -> dict:
    """DataLoader arguments of every training and evaluation loader of a run.

    ``workers`` None picks none for in-memory data and half the cores (at most 8) for
    disk-backed data; workers persist across the epochs of an experience.
    """
    if workers is None:
        on_disk = any(isinstance(e.train, ImageFileDataset) for e in stream.experiences)
        workers = min(8, max(1, (os.cpu_count() or 2) // 2)) if on_disk else 0
    return {
        "num_workers": workers,
        "persistent_workers": workers > 0,
        "pin_memory": device.type == "cuda",
    }


def run_config(
    config: BenchConfig, stream: SSLStream, strategy: str, device: torch.device | None = None
) -> dict:
    """Everything that defines one (strategy, seed) run, as JSON-ready values.

    The probe backend is recorded as resolved on ``device`` (``auto`` is no evaluation setup).
    """
    names = set(strategy.split("+"))
    evaluation = asdict(config.evaluation)
    evaluation["probe_backend"] = resolve_probe_backend(config.evaluation.probe_backend, device)
    return {
        "strategy": strategy,
        "stream": config.stream,
        "stream_options": asdict(config.stream_options),
        "split_seed": config.stream_options.split_seed,
        "eval_split": stream.eval_split,
        "train": asdict(config.train),
        "evaluation": evaluation,
        "strategy_options": {k: v for k, v in config.strategy_options.items() if k in names},
    }


def _kept_evaluation(config: BenchConfig, directory: Path, device: torch.device) -> EvalConfig:
    """The evaluation setup with ``auto`` resolved; a resumed run keeps the one it started with.

    ``--probe-backend auto`` resolves by device (torch on CUDA, scikit-learn on the CPU), so a
    run resumed on another kind of machine would otherwise change its probe halfway through
    its metrics; the backend recorded in its ``config.json`` wins.
    """
    backend = resolve_probe_backend(config.evaluation.probe_backend, device)
    recorded = directory / "config.json"
    if config.evaluation.probe_backend == "auto" and recorded.exists():
        evaluation = recorded_evaluation(json.loads(recorded.read_text()).get("evaluation"))
        backend = evaluation.get("probe_backend", backend)
    return replace(config.evaluation, probe_backend=backend)


def purge_step(state: dict) -> int:
    """The first TensorBoard step a run resumed from ``state`` logs again."""
    return int(state["clock"].get("train_iterations", 0)) + 1


class StrategyRun:
    """One strategy (possibly composed, ``lwf-ssl+replay``) trained on one stream, one seed.

    Args:
        stream: The stream to train and evaluate on.
        run: The plugin names of the run, e.g. ``("lwf-ssl", "replay")``.
        config: The bench configuration (``config.train.seed`` is this run's seed).
        directory: ``<out>/<run>/<strategy>/seed<s>``.
        purge_step: Resuming: TensorBoard drops the interrupted events from this step on
            (:func:`purge_step`).

    Example:
        >>> run = StrategyRun(stream, ("naive",), config, Path("runs/x/naive/seed0"))
        >>> run.evaluate(-1)
        >>> result = run.train(stream.benchmark.train_stream)
    """

    def __init__(
        self,
        stream: SSLStream,
        run: tuple[str, ...],
        config: BenchConfig,
        directory: Path,
        purge_step: int | None = None,
    ) -> None:
        self.stream, self.run, self.config, self.directory = stream, run, config, directory
        self.name = run_name(run)
        train = config.train
        self.main = distributed.is_main()  # evaluates and writes
        self.device = distributed.device_of(resolve_device(train.device))
        config = replace(config, evaluation=_kept_evaluation(config, directory, self.device))
        self.config = config
        self.loader_options = loader_options(train.workers, stream, self.device)
        self.run_config = run_config(config, stream, self.name, self.device)
        if self.main:
            directory.mkdir(parents=True, exist_ok=True)
            write_json(directory / "config.json", self.run_config, durable=True)
        # Same seed before building anything: every strategy starts from the same weights;
        # the template reseeds each experience from (seed, k) so data order and views match.
        RNGManager.set_random_seeds(train.seed)
        model, method = build_model(train, stream.image_size)
        if train.sync_bn and distributed.active():
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.augment_config = replace(
            method.augment_config(stream.image_size), **stream.augment_overrides
        )
        augment = make_augment(train.augment, self.augment_config)
        if isinstance(augment, torch.nn.Module):
            augment.to(self.device)
        plugin_list = build_plugins(run, config.strategy_options)
        self.plugins = dict(zip(run, plugin_list, strict=True))
        extra = [ProgressPlugin(self.name)] if config.progress and self.main else []
        self.representation = RepresentationMetrics(stream.experiences, augment, config.evaluation)
        self.figures = ContinualFigures()
        self.health = TrainingHealth()
        self.tensorboard = (
            ResumableTensorboardLogger(directory, purge_step=purge_step) if self.main else None
        )
        evaluator = EvaluationPlugin(
            loss_metrics(epoch=True, experience=True, stream=True),
            self.representation,
            self.figures,
            self.health,
            loggers=[self.tensorboard] if self.tensorboard is not None else [],
        )
        self.strategy = SSLTemplate(
            model=model,
            optimizer=make_optimizer(train, model),
            method=method,
            augment=augment,
            train_mb_size=local_batch_size(train.batch_size),
            train_epochs=train.epochs,
            eval_mb_size=train.eval_batch_size,
            device=self.device,
            plugins=plugin_list + extra,
            evaluator=evaluator,
            eval_seed=config.stream_options.split_seed,
            train_seed=train.seed,
            schedule=train.lr_schedule,
            autocast_dtype=resolve_precision(train.precision, self.device),
            channels_last=resolve_channels_last(train.channels_last, self.device),
            online=train.online,
            updates_per_batch=train.updates_per_batch,
            data_on_device=train.data_on_device,
            device_data_max_mb=train.device_data_max_mb,
        )
        every = parse_every(config.evaluation.checkpoint_every)
        if every is not None:
            interim = InterimCheckpoints(every, self.save_within, self._restore_within)
            self.strategy.interim = interim
        self.rows: list[dict] = []
        self.tags: dict[str, None] = {}  # Avalanche metric names measured, in order
        self.train_seconds = self.eval_seconds = 0.0
        self._experience_start = 0.0  # perf_counter when the experience training began
        self.representation_seconds = 0.0
        self.data_wait_seconds = 0.0  # of the run's earlier attempts (resumed runs)
        self.experience = -1  # the last experience trained

    # -- state ------------------------------------------------------------------------
    def restore(self, state: dict, experience: int, remeasured: bool = False) -> None:
        """Go on from a checkpoint's training state, written after ``experience``.

        Model, optimizer, plugins, clock, random states and the metrics rows so far; with
        ``remeasured``, the rows (and continual figures) this run measured itself
        (:meth:`remeasure`) stay instead of the state's.
        """
        history = (self.rows, self.tags, self.figures.state_dict()) if remeasured else None
        restore(self.strategy, self.plugins, state)
        run = state["run"]
        if history is None:
            self.rows = list(run["rows"])
            self.tags = dict.fromkeys(run["tags"])
        else:
            self.rows, self.tags, figures = history
            self.figures.load_state_dict(figures)
        self.train_seconds = float(run["train_seconds"])
        self.eval_seconds = float(run["eval_seconds"])
        self.representation_seconds = float(run["representation_seconds"])
        self.data_wait_seconds = float(run.get("data_wait_seconds", 0.0))
        self.experience = experience
        if self.main:
            write_metrics(self.rows, self.directory)

    def remeasure(self, states: Iterable[tuple[int, dict]]) -> None:
        """Measure the run's history again on this run's stream: one evaluation setup.

        The rows so far are replaced by the untrained model's (this freshly built run holds
        the seed's initial weights) and then each ``(k, state)``'s, in order: for
        ``clssl continue`` on a grown stream, whose banks, probes and splits differ from
        the ones the checkpoint's rows were measured with. Call before :meth:`restore`
        (with ``remeasured=True``) of the state to go on from.
        """
        self.rows, self.tags = [], {}
        self.figures.load_state_dict({"rows": {}})
        self.evaluate(-1)
        for k, state in states:
            self.restore(state, k, remeasured=True)
            self.evaluate(k)

    def resume_within(self, state: dict) -> None:
        """Go on inside an experience from an in-experience state (:mod:`cl_ssl.interim`).

        Call on a run that stands at the experience's start (freshly built for experience
        0, else :meth:`restore` of ``exp<k-1>.pt``), then :meth:`train` from experience k:
        the plugins take their saved state now, the rest once the experience has begun.
        """
        restore_plugins(self.plugins, state)
        self.strategy.interim.pending = state
        run = state["run"]
        self.rows, self.tags = list(run["rows"]), dict.fromkeys(run["tags"])
        self.train_seconds = float(run["train_seconds"])
        self.eval_seconds = float(run["eval_seconds"])
        self.representation_seconds = float(run["representation_seconds"])
        self.data_wait_seconds = float(run.get("data_wait_seconds", 0.0))
        if self.main:
            write_metrics(self.rows, self.directory)

    def _restore_within(self, strategy: SSLTemplate, state: dict) -> Position:
        """The template's part of :meth:`resume_within`, once the experience has begun."""
        return restore_within(strategy, self.plugins, state)

    def save(self, k: int) -> Path:
        """``checkpoints/exp<k>.pt``: the encoder and the full training state."""
        return self._save(k, self.directory / "checkpoints" / f"exp{k}.pt", self._run_state())

    def save_within(self, position: Position) -> None:
        """``checkpoints/within.pt``: the full state inside experience ``position.experience``.

        Every rank calls it (at the same step): under torchrun each rank's random states and
        floating buffers are gathered into rank 0's checkpoint.
        """
        local = {
            "random": random_state(),
            "epoch_random": position.epoch_random,
            "buffers": {
                k: v.detach().cpu().clone()
                for k, v in self.strategy.model.named_buffers()
                if v.is_floating_point()
            },
        }
        ranks = distributed.all_gather_object(local) if distributed.active() else None
        if not self.main:
            return
        elapsed = time.perf_counter() - self._experience_start
        within = {
            "experience": position.experience,
            "epoch": position.epoch,
            "step": position.step,
            "epoch_random": position.epoch_random,
            "generators": generators(self.plugins),
            "ranks": ranks,
        }
        # Called from inside train(): a failure here is located by train's own handler.
        self._save(position.experience, self.within_path, self._run_state(elapsed), within)

    @property
    def within_path(self) -> Path:
        """Where the in-experience checkpoint is written (:data:`cl_ssl.interim.WITHIN_FILE`)."""
        return self.directory / "checkpoints" / WITHIN_FILE

    def _run_state(self, training: float = 0.0) -> dict:
        """What the run keeps besides the training state; ``training``: seconds not yet added."""
        return {
            "rows": self.rows,
            "tags": list(self.tags),
            "train_seconds": self.train_seconds + training,
            "eval_seconds": self.eval_seconds,
            "representation_seconds": self._representation_seconds(),
            "data_wait_seconds": self._data_wait_seconds(),
        }

    def _save(self, k: int, path: Path, run: dict, within: dict | None = None) -> Path:
        train = self.config.train
        info = CheckpointInfo(
            train.backbone, train.method, self.stream.image_size, self.name, k, train.seed
        )
        state = capture(self.strategy, self.plugins, run)
        if within is not None:
            state["within"] = within
        return save_checkpoint(
            path, self.strategy.model, info, self.augment_config, state, self.run_config
        )

    # -- the loop ---------------------------------------------------------------------
    def evaluate(self, after: int) -> None:
        """Evaluate on every experience's split; append tidy rows, rewrite metrics.csv.

        Rank 0 only under torchrun (the others return at once and wait at the next barrier).
        """
        if not self.main:
            return
        with self._failure_position():
            start = time.perf_counter()
            metrics = self.strategy.eval(self.stream.benchmark.test_stream, **self.loader_options)
            self.eval_seconds += time.perf_counter() - start
        for key, value in metrics.items():
            match = EXPERIENCE_TAG.match(key) or STREAM_TAG.match(key)
            if match:
                self.tags[match["name"]] = None
                self.rows.append(
                    {
                        "strategy": self.name,
                        "seed": self.config.train.seed,
                        "metric": tidy_metric_name(match["name"]),
                        "train_exp": after,
                        "eval_exp": int(match["j"]) if "j" in match.groupdict() else UNION,
                        "value": float(value),
                    }
                )
        with self._failure_position():  # a full disk fails the run here too
            write_metrics(self.rows, self.directory)
        if after == -1:
            write_layout(self.tensorboard.writer, list(self.tags))

    def train(self, experiences) -> StrategyResult:
        """Train ``experiences`` in order; evaluate and checkpoint after each; write results."""
        for experience in experiences:
            with self._failure_position():
                self._experience_start = start = time.perf_counter()
                self.strategy.train(experience, eval_streams=[], **self.loader_options)
                self.train_seconds += time.perf_counter() - start
            k = experience.current_experience
            self.experience = k
            self.evaluate(k)
            if self.config.evaluation.checkpoints and self.main:
                with self._failure_position():
                    self.save(k)
                    self.within_path.unlink(missing_ok=True)  # exp<k>.pt supersedes it
            distributed.barrier()  # rank 0 evaluated and saved experience k
        with self._failure_position():
            return self.finish()

    def finish(self) -> StrategyResult:
        """``results.json`` and the hparams entry; the in-memory result (rank 0 writes)."""
        result = StrategyResult(
            self.name,
            pd.DataFrame(self.rows, columns=TIDY_COLUMNS),
            self.train_seconds,
            self.eval_seconds,
            self.strategy.images_trained,
            self.directory,
            self._representation_seconds(),
            self.strategy.steps_trained,
            self.config.train.seed,
            self._data_wait_seconds(),
        )
        if not self.main:
            return result  # the rows are rank 0's: it evaluated
        extra = {
            "experiences": self.stream.num_experiences,
            "skipped_images": self.stream.skipped_images,
        }
        figures = write_results(result, self.run_config, extra)
        self.tensorboard.writer.close()  # flush the event file now, not at interpreter exit
        hparams = {
            "strategy": self.name,
            "stream": self.config.stream,
            "eval_split": self.stream.eval_split,
            "split_seed": self.config.stream_options.split_seed,
            **asdict(self.config.train),
        }
        for plugin_name, options in self.config.strategy_options.items():
            if plugin_name in self.run:
                hparams.update({f"{plugin_name}.{k}": v for k, v in options.items()})
        final = {
            f"{row.metric}_{figure}": getattr(row, figure)
            for row in figures.itertuples()
            for figure in ("final_union", "final", "forgetting", "plasticity", "bwt")
            if pd.notna(getattr(row, figure))
        }
        write_hparams(self.directory, hparams, final)
        return result

    def _representation_seconds(self) -> float:
        return self.representation_seconds + self.representation.seconds

    def _data_wait_seconds(self) -> float:
        return self.data_wait_seconds + self.health.data_wait_seconds

    @contextmanager
    def _failure_position(self) -> Iterator[None]:
        """Turns an exception inside training or evaluation into :class:`StrategyFailed`.

        KeyboardInterrupt and SystemExit are not caught: they stop the whole bench.
        """
        try:
            yield
        except Exception as error:
            clock = self.strategy.clock
            # Avalanche clears strategy.experience after training it: evaluating or saving
            # experience k fails at k (self.experience), the baseline evaluation at -1.
            experience = getattr(self.strategy, "experience", None)
            position = (
                experience.current_experience if experience is not None else self.experience,
                clock.train_exp_epochs,
                clock.train_epoch_iterations,
            )
            if isinstance(error, NonFiniteLoss):  # found some steps later: where it began
                position = (error.experience, error.epoch, error.step)
            message = str(error).strip()
            failure = StrategyFailure(
                name=self.name,
                seed=self.config.train.seed,
                experience=position[0],
                epoch=position[1],
                step=position[2],
                error=type(error).__name__,
                message=message.splitlines()[0] if message else "",
                directory=self.directory,
            )
            if self.main:  # on a full disk these may fail too: the bench prints the failure
                with unless_disk_full():
                    self.tensorboard.writer.close()
                with unless_disk_full():
                    write_failure(failure)
            raise StrategyFailed(failure) from error
