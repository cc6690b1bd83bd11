"""One failing strategy never takes the others down; the exit code says something failed."""

from __future__ import annotations

import json

import pytest
import torch
from avalanche.core import SupervisedPlugin
from typer.testing import CliRunner

from cl_ssl.cli import app
from cl_ssl.template import NonFiniteLoss


def test_a_diverging_strategy_is_marked_failed_and_the_others_finish(tmp_path):
    # lambda = 1e300 (inf is refused up front) overflows the float32 loss: the distillation
    # term is non-finite from experience 1's first step.
    args = [
        "bench", "--stream", "digits-periods", "--strategy", "lwf-ssl,naive",
        "--opt", "lwf-ssl.lambda=1e300", "--epochs", "1", "--batch-size", "32",
        "--max-images", "40", "--image-size", "8", "--device", "cpu", "--no-progress",
        "--out", str(tmp_path), "--run", "diverge",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 1
    directory = tmp_path / "diverge"
    failure = json.loads((directory / "lwf-ssl" / "seed0" / "failure.json").read_text())
    assert (failure["experience"], failure["epoch"], failure["step"]) == (1, 0, 0)
    assert failure["error"] == "NonFiniteLoss" and "non-finite loss" in failure["message"]
    # Its last good checkpoint stays; the strategy after it ran to the end.
    assert (directory / "lwf-ssl" / "seed0" / "checkpoints" / "exp0.pt").is_file()
    assert not (directory / "lwf-ssl" / "seed0" / "results.json").exists()
    assert (directory / "naive" / "seed0" / "results.json").is_file()
    summary = (directory / "summary.md").read_text()
    assert "| naive" in summary
    assert "lwf-ssl (seed 0) failed at experience 1, epoch 0, step 0: NonFiniteLoss" in summary
    assert "failed: lwf-ssl (seed 0) failed at experience 1" in result.output


class NanFrom(SupervisedPlugin):
    """Adds a NaN term from (epoch, step) on; counts the steps that ran."""

    def __init__(self, epoch: int, step: int) -> None:
        super().__init__()
        self.start, self.steps = (epoch, step), 0

    def before_backward(self, strategy, **kwargs) -> None:
        self.steps += 1
        position = (strategy.clock.train_exp_epochs, strategy.clock.train_epoch_iterations)
        if position >= self.start:
            strategy.add_loss_term("bad", torch.tensor(float("nan")))


@pytest.mark.parametrize("check_every", [1, 50])
def test_a_non_finite_loss_is_reported_at_its_first_step(tiny_stream, make_template, check_every):
    # 108 images, batch 32: 4 steps per epoch; the first NaN is epoch 1, step 2.
    plugin = NanFrom(epoch=1, step=2)
    strategy = make_template(tiny_stream, [plugin], epochs=3)
    strategy.finite_check_every = check_every
    with pytest.raises(NonFiniteLoss, match=r"bad=nan\) on experience 0, epoch 1, step 2") as error:
        strategy.train(tiny_stream.benchmark.train_stream[0], eval_streams=[])
    assert (error.value.experience, error.value.epoch, error.value.step) == (0, 1, 2)
    # Checked every step it stops at once; else at the epoch's end, two wasted steps later.
    assert plugin.steps == (7 if check_every == 1 else 8)
