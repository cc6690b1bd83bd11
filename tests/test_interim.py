"""``--checkpoint-every``: a bench killed inside an experience resumes to the same metrics.

The reference bench runs without in-experience checkpoints; the killed one with them, so
the equality also shows that saving changes nothing. Kills use tests/fault_injection.py
(SIGKILL at the N-th training step or half-written checkpoint). The stream has 2
experiences of 4 steps per epoch, 2 epochs: ``3steps`` saves after steps 3 and 6 of each
experience (6 is step 2 of epoch 1: mid-epoch), ``1`` (epochs) after epoch 0.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from cl_ssl.cli import app
from cl_ssl.interim import Every, parse_every

STRATEGY = "lwf-ssl+replay"  # a teacher, a buffer and a generator of its own
BENCH = [
    "bench", "--stream", "split", "--dataset", "digits", "--tasks", "2",
    "--strategy", STRATEGY, "--epochs", "2", "--batch-size", "16", "--max-images", "64",
    "--image-size", "8", "--eval-batch-size", "64", "--eval-protocols", "all", "--knn-k", "20",
    "--no-kmeans", "--no-linear-probe", "--device", "cpu", "--no-progress",
]  # fmt: skip
STEPS = 8  # per experience: 2 epochs of ceil(57 / 16) = 4 steps


def test_every_reads_epochs_or_steps():
    assert parse_every("2") == parse_every("2epochs") == Every(2, "epochs")
    assert parse_every("200steps") == parse_every("200 step") == Every(200, "steps")
    assert parse_every(None) is None
    for bad in ("0", "2min", "steps", "-1"):
        with pytest.raises(ValueError, match="give N epochs"):
            parse_every(bad)


def test_bad_checkpoint_every_is_one_line():
    runner = CliRunner()
    result = runner.invoke(app, [*BENCH, "--checkpoint-every", "2h"])
    assert result.exit_code == 2 and "--checkpoint-every must be N (epochs)" in result.output
    result = runner.invoke(app, [*BENCH, "--checkpoint-every", "2", "--no-checkpoints"])
    assert result.exit_code == 2 and "drop --no-checkpoints" in result.output


@pytest.fixture(scope="module")
def reference(forks, tmp_path_factory):
    root = tmp_path_factory.mktemp("interim")
    out = ["--out", str(root), "--run", "reference"]
    done = forks.run("train", 0, root / "counts.json", root / "log", *BENCH, *out)
    assert done == {"signal": 0, "code": 0}, (root / "log").read_text()[-2000:]
    return pd.read_csv(root / "reference" / STRATEGY / "seed0" / "metrics.csv")


def position(path: Path) -> tuple[int, int, int]:
    within = torch.load(path, map_location="cpu", weights_only=True)["training_state"]["within"]
    return within["experience"], within["epoch"], within["step"]


@pytest.mark.parametrize(
    ("every", "event", "nth", "saved", "extra"),
    [
        ("3steps", "train", STEPS + 8, (1, 1, 2), ()),  # last step of exp 1: mid-epoch at 6
        ("3steps", "train", 5, (0, 0, 3), ()),  # experience 0: from the seed's initial weights
        ("1", "train", STEPS + 7, (1, 1, 0), ()),  # the epochs form: epoch 0 of exp 1 done
        # Half-written (the 5th checkpoint: exp 1's at step 6): the one at step 3 is intact.
        ("3steps", "checkpoint", 5, (1, 0, 3), ()),
        # Batches indexed from device-held images redraw the epoch's order as the loader does.
        ("3steps", "train", STEPS + 8, (1, 1, 2), ("--data-on-device", "on")),
    ],
)
def test_killed_inside_an_experience_resumes_to_the_uninterrupted_metrics(
    forks,
    reference,
    tmp_path,
    every,
    event,
    nth,
    saved,
    extra,
):
    out = ["--out", str(tmp_path), "--run", "killed"]
    command = [*BENCH, "--checkpoint-every", every, *extra, *out]
    killed = forks.run(event, nth, tmp_path / "unused", tmp_path / "log", *command)
    assert killed["signal"] == 9, (tmp_path / "log").read_text()[-2000:]
    run = tmp_path / "killed" / STRATEGY / "seed0"
    assert position(run / "checkpoints" / "within.pt") == saved

    resume = ["bench", "--resume", str(tmp_path / "killed"), "--no-progress"]
    again = forks.run("train", 0, tmp_path / "counts.json", tmp_path / "log", *resume)
    assert again == {"signal": 0, "code": 0}, (tmp_path / "log").read_text()[-2000:]
    pd.testing.assert_frame_equal(pd.read_csv(run / "metrics.csv"), reference, check_exact=True)
    # A finished run keeps the experience checkpoints only, nothing half written.
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["exp0.pt", "exp1.pt"]
    assert not list(run.rglob("*.partial"))


def test_torchrun_restarts_need_a_named_run(monkeypatch, tmp_path):
    from cl_ssl.bench import restarted
    from cl_ssl.config import BenchConfig

    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "2")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    with pytest.raises(ValueError, match="give --run-name"):
        restarted(BenchConfig(stream="digits-periods", out=tmp_path))
    config = BenchConfig(stream="digits-periods", out=tmp_path, run_name="r")
    assert not restarted(config)  # the first attempt
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert not restarted(config)  # restarted before its run began: it starts it
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "bench.json").write_text("{}")
    assert restarted(config)
