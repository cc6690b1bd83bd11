"""Strategy rows: cl-ssl's real training path, timed on experience 1.

The run is built by :class:`cl_ssl.strategy_run.StrategyRun` (same model, optimizer,
augmentation, plugins, evaluator and template as ``clssl bench``) on a two-experience
stream of the speed data. Experience 0 trains ``first_experience_steps`` steps and ends
normally, so every plugin's end-of-experience work happens (EWC's Fisher pass, the replay
buffer update); experience 1 starts with a teacher, importances and a buffer, and is
timed by :class:`TimingPlugin`, which stops training once the last window ends (so no
post-experience work is paid for the timed experience).

Timing is between consecutive ``after_training_iteration`` events, the same boundary as
the loops' ticks: a window holds ``steps`` whole iterations, loading of their batches
(Avalanche's loader, outside any hook) included.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from avalanche.core import SupervisedPlugin

from cl_ssl.speed.config import SpeedConfig, row_data
from cl_ssl.speed.data import DataSource
from cl_ssl.speed.timing import Stopwatch


class WindowsDone(Exception):
    """Raised by :class:`TimingPlugin` to stop training when the last window has ended."""


class TimingPlugin(SupervisedPlugin):
    """Ticks a :class:`Stopwatch` after every training iteration while :attr:`active`.

    Also sums the absolute value of every named loss term of the timed steps
    (``strategy.loss_terms``: ``ssl``, ``distill``, ``ewc``, ...) on the device, so the
    report shows the strategy's own term was at work without a per-step device sync.
    """

    def __init__(self, watch: Stopwatch) -> None:
        super().__init__()
        self.watch = watch
        self.active = False
        self.experience = -1
        self.term_sums: dict[str, torch.Tensor] = {}

    def after_training_iteration(self, strategy, *args, **kwargs) -> None:
        if not self.active:
            return
        self.experience = strategy.experience.current_experience
        if self.watch.timing:
            for name, value in strategy.loss_terms.items():
                self.term_sums[name] = self.term_sums.get(name, 0) + value.detach().abs()
        if self.watch.tick(strategy.mb_x.shape[0]):  # images incl. replayed ones
            raise WindowsDone

    def loss_terms(self) -> dict[str, float]:
        """Mean |term| over the timed steps, per loss term."""
        steps = self.watch.windows * self.watch.steps
        return {name: float(total) / steps for name, total in sorted(self.term_sums.items())}


def train_config(config: SpeedConfig, data_on_device: str = "auto"):
    """The bench's :class:`~cl_ssl.config.TrainConfig` for this speed config."""
    from cl_ssl.config import TrainConfig

    return TrainConfig(
        batch_size=config.batch_size,
        backbone=config.backbone,
        device=config.device,
        seed=config.seed,
        augment="batched",
        workers=config.workers,
        precision=config.precision,
        channels_last=config.channels_last,
        compile=config.compile,
        data_on_device=data_on_device,
    )


def strategy_row(
    name: str, config: SpeedConfig, source: DataSource, device, watch: Stopwatch
) -> dict:
    """Train experience 0 briefly, then time experience 1 of strategy spec ``name``.

    ``name@device`` / ``name@loader``: with ``--data-on-device on`` / ``off``.
    """
    from cl_ssl.config import BenchConfig, EvalConfig
    from cl_ssl.strategy import parse_spec
    from cl_ssl.strategy_run import StrategyRun
    from cl_ssl.streams import ExperienceData, StreamOptions, make_stream

    spec, data_on_device = row_data(name)
    (run_names,) = parse_spec(spec)
    batch = config.batch_size
    first = config.first_experience_steps * batch
    test = source.dataset(2, config.storage)  # never evaluated: the stream needs one
    experiences = [
        ExperienceData("exp0", source.dataset(first, config.storage), test),
        ExperienceData("exp1", source.dataset(watch.total * batch, config.storage, first), test),
    ]
    stream = make_stream("speed", experiences, config.image_size, StreamOptions())
    bench = BenchConfig(
        stream="speed",
        strategies=spec,
        train=train_config(config, data_on_device),
        evaluation=EvalConfig(checkpoints=False),
        strategy_options={k: v for k, v in config.strategy_options.items() if k in run_names},
        progress=False,
    )
    timer = TimingPlugin(watch)
    with tempfile.TemporaryDirectory(prefix="clssl-speed-") as directory:
        run = StrategyRun(stream, run_names, bench, Path(directory))
        run.strategy.plugins.append(timer)  # after the strategy's: its hooks see the step done
        train_stream = stream.benchmark.train_stream
        # As StrategyRun.train calls it: no evaluation stream, the run's loader options.
        options = run.loader_options
        watch.begin()  # warm-up s: experience 0 (compilation) and experience 1's warm-up
        run.strategy.train(train_stream[0], eval_streams=[], **options)
        timer.active = True
        try:
            run.strategy.train(train_stream[1], eval_streams=[], **options)
        except WindowsDone:
            pass
        run.tensorboard.writer.close()
    if timer.experience != 1 or watch.step != watch.total:
        raise RuntimeError(f"timed {watch.step} steps on experience {timer.experience}")
    return {
        "experience": timer.experience,
        "loss_terms": timer.loss_terms(),
        "workers": options["num_workers"],
    }
