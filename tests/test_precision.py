"""Fast steps: bf16 autocast, channels-last, torch.compile, and no host reads per step."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin
from torch.overrides import TorchFunctionMode

from cl_ssl.bench import build_model, run_bench
from cl_ssl.config import TrainConfig
from cl_ssl.evaluation.loss import loss_metrics
from cl_ssl.precision import resolve_channels_last, resolve_precision
from cl_ssl.registry import strategies
from cl_ssl.strategy import build_plugins, parse_spec
from cl_ssl.template import SSLTemplate

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture
def make(make_template):
    """conftest's template factory with cl-ssl's sync-free loss metric and a train seed."""

    def build(stream, plugins=(), **template_options) -> SSLTemplate:
        metrics = loss_metrics(epoch=True, experience=True)
        evaluator = EvaluationPlugin(metrics, loggers=[])
        return make_template(stream, plugins, evaluator=evaluator, train_seed=0, **template_options)

    return build


class Steps(SupervisedPlugin):
    """Each training step's loss, output dtype and input memory format."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []
        self.output_dtypes: set[torch.dtype] = set()
        self.channels_last: set[bool] = set()

    def after_backward(self, strategy, *args, **kwargs) -> None:
        self.losses.append(strategy.loss.item())
        self.output_dtypes.add(strategy.mb_output.projections.dtype)
        views = strategy.mb_x.flatten(0, 1)
        self.channels_last.add(views.is_contiguous(memory_format=torch.channels_last))


def test_settings_resolve_per_device():
    assert resolve_precision("auto", CPU) is None
    assert resolve_precision("auto", CUDA) is torch.bfloat16
    assert resolve_precision("bf16", CPU) is torch.bfloat16
    assert resolve_precision("fp32", CUDA) is None
    assert resolve_channels_last(None, CPU) is True and resolve_channels_last(None, CUDA) is True
    assert resolve_channels_last(False, CUDA) is False


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("precision", "fp16", "unknown precision 'fp16'; choose from: auto, fp32, bf16"),
        ("channels_last", "yes", "--channels-last must be on, off or auto"),
        ("compile", 1, "--compile must be on or off"),
    ],
)
def test_bad_settings_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_bf16_autocast_trains_on_the_cpu(tiny_stream, make):
    steps = Steps()
    strategy = make(tiny_stream, [steps], autocast_dtype=torch.bfloat16)
    strategy.train(tiny_stream.benchmark.train_stream[0], eval_streams=[])
    assert steps.output_dtypes == {torch.bfloat16}  # the forward ran under autocast
    assert all(math.isfinite(loss) for loss in steps.losses)
    # Weights (and so the optimizer) stay fp32.
    assert {p.dtype for p in strategy.model.parameters()} == {torch.float32}


def test_bf16_run_end_to_end_with_a_teacher(tiny_bench):
    """lwf-ssl: the teacher's forward and the distillation term run under autocast too."""
    result = run_bench(tiny_bench("lwf-ssl", precision="bf16")).strategies[0]
    assert result.loss_matrix.shape == (5, 5)
    assert all(math.isfinite(v) for v in result.loss_matrix.values.flatten())


def test_channels_last_gives_the_same_losses(tiny_stream, make):
    runs = {}
    for channels_last in (False, True):
        steps = Steps()
        strategy = make(tiny_stream, [steps], channels_last=channels_last)
        strategy.train(tiny_stream.benchmark.train_stream[0], eval_streams=[])
        conv = strategy.model.backbone.stem[0].weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == channels_last
        assert steps.channels_last == {channels_last}
        runs[channels_last] = torch.tensor(steps.losses)
    # Same maths, another summation order: the first step's loss equal up to float rounding;
    # Adam's updates amplify the rounding a little over the following steps.
    torch.testing.assert_close(runs[True][0], runs[False][0], rtol=1e-5, atol=0)
    torch.testing.assert_close(runs[True], runs[False], rtol=1e-3, atol=0)


def test_compiled_backbone_keeps_checkpoint_keys():
    plain, _ = build_model(TrainConfig(), 8)
    compiled, _ = build_model(TrainConfig(compile=True), 8)
    assert compiled.backbone._compiled_call_impl is not None  # compiled in place, lazily
    assert list(compiled.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(compiled.state_dict())  # strict: a checkpoint loads either way
    compiled.load_state_dict(plain.state_dict())


HOST_READS = {"item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__"}
OURS = ("cl_ssl", "strategies", "avalanche")


# torch's dispatch of Python-level Tensor methods to the mode: not the caller.
DISPATCH = (str(Path("torch", "overrides.py")), str(Path("torch", "_tensor.py")))


class HostReads(TorchFunctionMode):
    """Records every tensor read on the host with its caller (file, function).

    Reads inside torch itself (Adam reading its CPU step counters) name torch's file.
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, str]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            frame = inspect.currentframe().f_back
            while frame is not None and frame.f_code.co_filename.endswith(DISPATCH):
                frame = frame.f_back
            if frame is not None:
                self.calls.append((name, frame.f_code.co_filename, frame.f_code.co_name))
        return func(*args, **(kwargs or {}))


class WatchSteps(SupervisedPlugin):
    """The mode is on from each training step's start to its end, the evaluator's update included.

    Data loading (between steps) and the template's periodic loss check are outside.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mode = HostReads()
        self.on = False

    def before_training_iteration(self, strategy, *args, **kwargs) -> None:
        self.mode.__enter__()
        self.on = True

    def after_training_iteration(self, strategy, *args, **kwargs) -> None:
        self.stop()

    def stop(self) -> None:
        if self.on:
            self.mode.__exit__(None, None, None)
            self.on = False


@pytest.mark.parametrize("name", strategies.names())
def test_training_steps_never_read_tensors_on_the_host(name, tiny_stream, make):
    """On a GPU each such read would make the host wait for the step to finish."""
    (run,) = parse_spec(name)
    watch = WatchSteps()
    strategy = make(tiny_stream, build_plugins(run, {}))
    # Right after the evaluator: its per-step update of the loss metrics is watched too.
    strategy.plugins.insert(strategy.plugins.index(strategy.evaluator) + 1, watch)
    try:
        for experience in tiny_stream.benchmark.train_stream[:2]:  # a teacher in the second
            strategy.train(experience, eval_streams=[])
    finally:
        watch.stop()
    assert len(watch.mode.calls) > 0  # the mode saw reads (Adam's CPU step counters)
    ours = [call for call in watch.mode.calls if any(f"/{part}/" in call[1] for part in OURS)]
    assert ours == []
