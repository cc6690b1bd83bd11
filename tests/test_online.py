"""Online mode: one ordered pass, repeated updates, and replay from an online buffer."""

from __future__ import annotations

import pytest
import torch
from avalanche.core import SupervisedPlugin

from cl_ssl.config import BenchConfig, EvalConfig, StreamOptions, TrainConfig
from cl_ssl.kit.streaming_replay import REPLAYED_LABEL
from cl_ssl.online import RepeatedBatches
from cl_ssl.registry import streams
from cl_ssl.strategy_run import StrategyRun

FRAMES = 4


def test_repeated_batches_yield_each_batch_in_a_row_as_new_lists():
    batches = [[torch.tensor([i]), torch.tensor([10 * i])] for i in range(3)]
    loader = RepeatedBatches(batches, times=2)
    seen = []
    for batch in loader:
        seen.append((int(batch[0]), loader.repeat))
        batch[0] = torch.tensor([-1])  # a plugin replacing rows: the next repeat is intact
    assert seen == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert len(loader) == 6 and batches[0][0].item() == 0


def test_online_flags_are_checked_up_front():
    with pytest.raises(ValueError, match="one pass"):
        TrainConfig(online=True, epochs=2)
    with pytest.raises(ValueError, match="add --online"):
        TrainConfig(updates_per_batch=3)
    with pytest.raises(ValueError, match="at least 1"):
        TrainConfig(online=True, updates_per_batch=0)


class Record(SupervisedPlugin):
    """The raw images and freshness of every step, and the replay buffer after each experience."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[torch.Tensor, bool]] = []
        self.buffers: list[dict] = []

    def before_training_iteration(self, strategy, **kwargs) -> None:
        self.steps.append((strategy.mbatch[0].clone(), strategy.fresh_batch))

    def after_training_exp(self, strategy, **kwargs) -> None:
        replay = next((p for p in strategy.plugins if hasattr(p, "streaming")), None)
        if replay is not None and replay.streaming is not None:
            self.buffers.append(replay.streaming.buffer.state_dict())


def online_run(tmp_path, strategy="naive", options=None, updates=2, experiences=1, record=None):
    bench = BenchConfig(
        stream="digits-vods",
        strategies=strategy,
        train=TrainConfig(
            batch_size=32, device="cpu", online=True, updates_per_batch=updates, seed=0
        ),
        evaluation=EvalConfig(knn_k=(5,), linear_probe=False, kmeans=False, checkpoints=False),
        stream_options=StreamOptions(max_images=40, extra={"frames": str(FRAMES)}),
        strategy_options={strategy: options or {}},
        progress=False,
    )
    stream = streams.get("digits-vods")(bench.stream_options)
    run = StrategyRun(stream, (strategy,), bench, tmp_path / strategy)
    record = record or Record()
    run.strategy.plugins.append(record)
    for experience in list(stream.benchmark.train_stream)[:experiences]:
        run.strategy.train(experience, eval_streams=[])
    return stream, record


def test_online_mode_trains_once_in_arrival_order_with_repeated_updates(tmp_path):
    stream, record = online_run(tmp_path, updates=3)
    frames = stream.experiences[0].train.images
    fresh = [images for images, is_fresh in record.steps if is_fresh]
    # Every frame once, in the stream's order (no shuffling), each batch three times in a row.
    assert torch.equal(torch.cat(fresh), frames)
    assert [f for _, f in record.steps] == [True, False, False] * len(fresh)
    for i, (images, _) in enumerate(record.steps):
        assert torch.equal(images, record.steps[i - i % 3][0])


class BufferRecord(Record):
    """Also every batch offered to the online buffer, and each step's rows after replay
    (registered after the replay plugin: it sees the batch replay made)."""

    def __init__(self) -> None:
        super().__init__()
        self.added: list[torch.Tensor] = []
        self.mixed: list[tuple[torch.Tensor, torch.Tensor]] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        replay = next(p for p in strategy.plugins if getattr(p, "streaming", None))
        buffer = replay.streaming.buffer  # built by replay's before_training_exp
        if getattr(buffer, "recorded", False):
            return
        add = buffer.add

        def recording_add(images, *args, **kwargs):
            self.added.append(images.clone())
            return add(images, *args, **kwargs)

        buffer.add, buffer.recorded = recording_add, True

    def before_forward(self, strategy, **kwargs) -> None:
        self.mixed.append((strategy.mbatch[0].clone(), strategy.mbatch[1].clone()))


@pytest.mark.parametrize("kind", ["minred", "reservoir"])
def test_online_replay_fills_its_buffer_with_every_frame_once(tmp_path, kind):
    options = {"buffer": kind, "mem-size": "36"}
    stream, record = online_run(tmp_path, "replay", options, 2, 2, BufferRecord())
    frames = torch.cat([stream.experiences[k].train.images for k in (0, 1)])
    sizes = [len(stream.experiences[k].train) for k in (0, 1)]
    # Every frame offered to the buffer exactly once, in arrival order: not per update, and
    # the new frames of a step, not the replayed rows that replaced some of them.
    assert torch.equal(torch.cat(record.added), frames)
    assert [int(b["seen"]) for b in record.buffers] == [sizes[0], sizes[0] + sizes[1]]
    # Each kept row is the frame of its arrival index, from its experience, at most once.
    for state in record.buffers:
        experience, arrival = state["meta"].unbind(1)
        assert len(arrival.unique()) == len(arrival) == min(36, int(state["seen"]))
        assert torch.equal(state["images"], frames[arrival])
        assert torch.equal(experience, (arrival >= sizes[0]).long())
    # Once the buffer holds a step's share, half of every step is buffered frames.
    replayed = [int((labels == REPLAYED_LABEL).sum()) for _, labels in record.mixed]
    assert replayed[0] == 0 and sum(replayed) > 0
    for (images, _), count in zip(record.mixed, replayed, strict=True):
        assert count in (0, images.shape[0] * 16 // 32)


def distinct_vods(state: dict) -> int:
    arrival = state["meta"][:, 1]  # (experience, arrival) of every kept frame
    return len(torch.unique(arrival // FRAMES))


def test_minred_keeps_more_distinct_vods_than_reservoir(tmp_path):
    """36 VODs of 4 near-duplicate frames, a buffer of 36: MinRed spreads over the VODs."""
    kept = {}
    for kind in ("minred", "reservoir"):
        _, record = online_run(tmp_path / kind, "replay", {"buffer": kind, "mem-size": "36"})
        kept[kind] = distinct_vods(record.buffers[0])
    assert kept["minred"] > kept["reservoir"], kept
    assert kept["minred"] >= 28  # of 36 VODs (reservoir: ~24)


def test_online_replay_refuses_double_mode():
    from cl_ssl.strategies.replay import ReplayOptions, ReplayPlugin

    with pytest.raises(ValueError, match="replay.mode=equal"):
        ReplayPlugin(ReplayOptions(buffer="minred", mode="double"))


def test_bench_cli_runs_online(tmp_path):
    from typer.testing import CliRunner

    from cl_ssl.cli import app

    result = CliRunner().invoke(
        app,
        ["bench", "--stream", "digits-vods", "--strategy", "replay", "--opt",
         "replay.buffer=minred", "--online", "--updates-per-batch", "2", "--max-images", "20",
         "--stream-opt", "frames=2", "--batch-size", "16", "--no-progress", "--no-linear-probe",
         "--no-kmeans", "--out", str(tmp_path), "--run", "o"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = (tmp_path / "o" / "replay" / "seed0" / "config.json").read_text()
    assert '"online": true' in config and '"updates_per_batch": 2' in config
