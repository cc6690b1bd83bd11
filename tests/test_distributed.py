"""torchrun: 2 CPU processes (gloo) train as one process with the global batch would."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from cl_ssl import distributed
from cl_ssl.config import TrainConfig
from cl_ssl.models.ssl_model import SSLOutput
from cl_ssl.strategy_run import build_model, local_batch_size

SCRIPT = Path(__file__).with_name("distributed_first_step.py")


def torchrun(*args: str, timeout: int = 600, ok: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", *args]  # fmt: skip
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"}
    env.update({k: v for k, v in os.environ.items() if k == "PYTHONPATH"})  # a worktree's code
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if ok:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def first_steps(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    torchrun(str(SCRIPT), str(out))
    return out


def reference(records: list[dict], strategy: str) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """One process, the global batch: the loss, its gradients and the ranks' local losses.

    BatchNorm normalises each rank's rows with their own statistics under DDP (no
    --sync-bn), so the reference runs the model on each rank's views in turn and computes
    every loss on the concatenated global batch, in rank order (the gather's order).
    """
    from cl_ssl.strategies.lwf_ssl import LwFSSLPlugin

    train = TrainConfig(batch_size=32, device="cpu", precision="fp32")
    torch.manual_seed(0)
    model, method = build_model(train, 8)
    model.load_state_dict(records[0]["start"])
    plugin = LwFSSLPlugin()
    plugin.teacher.freeze(model)  # the model as the experience began, before any forward
    model.train()
    views = [r["views"] for r in records]
    parts = [model(v) for v in views]
    output = SSLOutput(*(None if f[0] is None else torch.cat(f) for f in zip(*parts, strict=True)))
    batch = torch.cat(views)
    loss = method(output, batch)
    local = torch.stack([method(p, v) for p, v in zip(parts, views, strict=True)]).mean()
    if strategy == "lwf-ssl":
        terms = {}

        class Step:
            mb_output, mb_x = output, batch

            @staticmethod
            def add_loss_term(name, value):
                terms[name] = value

        plugin.before_backward(Step)
        assert set(terms) == {"distill"} and terms["distill"] > 0
        loss = loss + terms["distill"]
    model.zero_grad()
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    return loss.detach(), grads, local.detach()


@pytest.mark.parametrize("strategy", ["naive", "lwf-ssl"])
def test_first_step_equals_one_process_at_the_global_batch(first_steps, strategy):
    records = [torch.load(first_steps / f"{strategy}-rank{r}.pt") for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in records)
    assert all(r["views"].shape[0] == 16 for r in records)  # 32 global = 2 x 16
    for key, value in records[0]["start"].items():  # DDP: the same weights on both ranks
        assert torch.equal(value, records[1]["start"][key]), key
    assert not torch.equal(records[0]["views"], records[1]["views"])  # each rank's own rows
    loss, grads, local = reference(records, strategy)
    for record in records:  # every rank computed the global batch's loss
        assert record["loss"].item() == pytest.approx(loss.item(), abs=1e-5)
        for name, grad in grads.items():
            torch.testing.assert_close(record["grads"][name], grad, atol=1e-5, rtol=1e-4)
    # Negatives span the global batch: per-rank losses would have been another number.
    assert abs(local.item() - loss.item()) > 1e-3


def flatten(value, prefix=""):
    """``{path: leaf}`` of nested dicts, lists and tuples."""
    if isinstance(value, dict):
        return {
            k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}/{key}").items()
        }
    if isinstance(value, (list, tuple)):
        return {
            k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}/{i}").items()
        }
    return {prefix: value}


@pytest.mark.parametrize("strategy", ["ewc", "replay", "cassle", "pfr", "pnr"])
def test_strategy_state_is_the_same_on_every_rank(first_steps, strategy):
    """Teacher, EWC importances, the replay buffer, predictors: one state, two ranks."""
    states = [flatten(torch.load(first_steps / f"state-{strategy}-rank{r}.pt")) for r in (0, 1)]
    assert states[0].keys() == states[1].keys()
    assert any(key.startswith(f"/plugins/{strategy}") for key in states[0])
    for key, value in states[0].items():
        other = states[1][key]
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(value, other, atol=1e-6, rtol=1e-5, msg=key)
        else:
            assert value == other, key
    assert states[0]["/template/images_trained"] == 2 * 36  # global images, not one rank's


# The torchrun bench of the two tests below: 2 experiences of 2 epochs, 36 images (18 a
# rank): 2 steps an epoch, 4 an experience.
BENCH = [
    "bench", "--stream", "split", "--dataset", "digits", "--tasks", "2",
    "--strategy", "naive,lwf-ssl", "--epochs", "2", "--image-size", "8", "--max-images", "40",
    "--batch-size", "32", "--no-progress", "--device", "cpu",
]  # fmt: skip


@pytest.fixture(scope="module")
def torchrun_bench(tmp_path_factory) -> tuple[Path, str]:
    """The bench under torchrun, uninterrupted: its run directory (not to be changed) and
    its output."""
    out = tmp_path_factory.mktemp("torchrun")
    result = torchrun("-m", "cl_ssl", *BENCH, "--out", str(out), "--run-name", "ddp")
    return out / "ddp", result.stdout


def test_a_torchrun_bench_writes_its_metrics_and_checkpoints_once(torchrun_bench, tmp_path):
    original, stdout = torchrun_bench
    assert stdout.count("results: ") == 1  # rank 0 alone reports
    assert sorted(p.name for p in original.parent.iterdir()) == ["ddp"]
    run = tmp_path / "ddp"
    shutil.copytree(original, run)  # cut short below; the restart test compares with it
    for strategy in ("naive", "lwf-ssl"):
        seed = run / strategy / "seed0"
        metrics = pd.read_csv(seed / "metrics.csv")
        keys = ["metric", "train_exp", "eval_exp"]
        assert not metrics.duplicated(keys).any()  # one evaluation per experience, not two
        assert sorted(metrics["train_exp"].unique()) == [-1, 0, 1]
        assert sorted(p.name for p in (seed / "checkpoints").iterdir()) == ["exp0.pt", "exp1.pt"]
        # Every TensorBoard file comes from one process (the pid is in the name): rank 0.
        pids = {re.split(r"\.", p.name)[-2] for p in seed.glob("events.out.tfevents.*")}
        assert len(pids) == 1
    summary = pd.read_csv(run / "summary.csv")
    assert sorted(summary["strategy"]) == ["lwf-ssl", "naive"]
    assert (summary["images/step"] == 18).all()  # the global batch: 36 images in 2 steps

    # Cut lwf-ssl short after experience 0, resume under torchrun: the same metrics.
    seed = run / "lwf-ssl" / "seed0"
    whole = pd.read_csv(seed / "metrics.csv")
    (seed / "results.json").unlink()
    (seed / "checkpoints" / "exp1.pt").unlink()
    torchrun("-m", "cl_ssl", "bench", "--resume", str(run), "--no-progress")
    resumed = pd.read_csv(seed / "metrics.csv")
    pd.testing.assert_frame_equal(resumed, whole, check_exact=False, atol=1e-6)


def test_torchrun_restart_goes_on_from_the_checkpoint_inside_the_experience(
    torchrun_bench, tmp_path
):
    """Rank 1 dies in experience 1; torchrun --max-restarts reruns the same command line."""
    reference, _ = torchrun_bench
    # Saved after step 3 of naive's experience 1 (epoch 1, step 1); rank 1 dies at its last
    # step (8), after rank 0 saved (their forwards meet in a collective). lwf-ssl follows.
    result = torchrun(
        "--max-restarts", "1", str(SCRIPT), "--kill-rank-1-at", "8", *BENCH[1:],
        "--out", str(tmp_path), "--run-name", "restarted", "--checkpoint-every", "3steps",
    )  # fmt: skip
    assert "resumed inside experience 1 at epoch 1, step 1" in result.stdout
    restarted = tmp_path / "restarted"
    for strategy in ("naive", "lwf-ssl"):
        got, want = (d / strategy / "seed0" / "metrics.csv" for d in (restarted, reference))
        pd.testing.assert_frame_equal(
            pd.read_csv(got), pd.read_csv(want), check_exact=False, atol=1e-6
        )


def test_single_process_helpers_are_identities():
    x = torch.randn(4, 3, requires_grad=True)
    assert not distributed.active() and distributed.world_size() == 1
    with distributed.global_batches():
        assert distributed.gather(x) is x
        output = SSLOutput(x, x)
        assert distributed.gather_output(output) is output
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    assert local_batch_size(32) == 32


def test_bad_distributed_settings_are_refused_up_front(monkeypatch):
    with pytest.raises(ValueError, match="--sync-bn needs CUDA"):
        TrainConfig(sync_bn=True, device="cpu")
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    with pytest.raises(ValueError, match="pass a multiple of 3"):
        local_batch_size(32)
    monkeypatch.setenv("WORLD_SIZE", "2")
    from cl_ssl.strategies.replay import ReplayOptions, ReplayPlugin

    with pytest.raises(ValueError, match="replay.mode=equal"):
        ReplayPlugin(ReplayOptions(mode="double"))


def test_bad_input_under_torchrun_is_refused_before_the_group_by_rank_0_alone(
    monkeypatch, tmp_path
):
    """Each rank as torchrun starts it (no group yet): one line from rank 0, exit 2 on both."""
    import torch.distributed as dist
    from typer.testing import CliRunner

    from cl_ssl.cli import app

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)  # joining a group now would fail
    out = tmp_path / "runs"
    args = ["bench", "--stream", "digits-periods", "--batch-size", "33", "--device", "cpu",
            "--out", str(out), "--run-name", "ddp", "--no-progress"]  # fmt: skip
    line = (
        "error: --batch-size 33 is the global batch and must split evenly over the 2 "
        "processes: pass a multiple of 2"
    )
    for rank, printed in (("0", [line]), ("1", [])):
        monkeypatch.setenv("RANK", rank)
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2
        assert result.output.strip().splitlines() == printed, result.output
        assert not dist.is_initialized() and not out.exists()


def test_an_error_on_one_rank_stops_every_rank_with_its_message(tmp_path):
    args = ["--stream", "digits-periods", "--strategy", "naive,lwf-ssl", "--image-size", "8",
            "--max-images", "40", "--batch-size", "32", "--no-progress", "--device", "cpu",
            "--out", str(tmp_path), "--run-name", "broken"]  # fmt: skip
    # Rank 0 waits in a collective for rank 1, which raised: the launcher must end it.
    result = torchrun(str(SCRIPT), "--fail-on-rank-1", *args, timeout=300, ok=False)
    assert result.returncode != 0
    assert "rank 1 broke" in result.stdout + result.stderr
    assert not (tmp_path / "broken" / "summary.md").exists()  # no summary of a broken bench


def test_commands_other_than_bench_refuse_torchrun():
    env = {"WORLD_SIZE": "2", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "cl_ssl", "continue", "--from", "x.pt"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "runs in one process" in result.stderr and "Traceback" not in result.stderr
