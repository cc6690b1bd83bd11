"""--data-on-device: the loader's batches, draw for draw, indexed from tensors on the device."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
from avalanche.benchmarks.utils import as_classification_dataset
from avalanche.benchmarks.utils.transform_groups import TransformGroups
from avalanche.core import SupervisedPlugin
from torch.overrides import TorchFunctionMode
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from cl_ssl.bench import run_bench
from cl_ssl.config import BenchConfig, EvalConfig, TrainConfig
from cl_ssl.data import device_resident
from cl_ssl.data.device_resident import ResidentBatches, resident_tensors
from cl_ssl.data.files import ImageFileDataset
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.streams import StreamOptions


def images(n: int, offset: int = 0) -> ImageTensorDataset:
    pixels = torch.arange(offset, offset + n).remainder(256).to(torch.uint8)
    return ImageTensorDataset(pixels.view(n, 1, 1, 1).expand(n, 1, 2, 2).clone(), torch.arange(n))


def stacked(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's items one by one, as the loader reads them."""
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])


def test_tensors_behind_subsets_and_concatenations_are_the_items():
    first, second = as_classification_dataset(images(10)), as_classification_dataset(images(7, 50))
    # joint's union of experiences, a subset of it in a shuffled order, and the train view.
    union = first.concat(second).subset([15, 0, 3, 11, 9, 16]).concat(first.subset([2, 2]))
    for dataset in (first.train(), union.train()):
        found = resident_tensors(dataset)
        assert not isinstance(found, str), found
        expected = stacked(dataset)
        assert torch.equal(found[0], expected[0]) and torch.equal(found[1], expected[1])


def test_what_cannot_live_on_the_device_is_named():
    files = ImageFileDataset(["a.png", "b.png"], [0, 1], size=512)  # never decoded: too big
    assert "over --device-data-max-mb" in resident_tensors(as_classification_dataset(files), 1)
    assert "holds no image" in resident_tensors([(torch.zeros(2), 0)])
    assert "over --device-data-max-mb" in resident_tensors(
        as_classification_dataset(images(2**20 // 4 + 1)), max_mb=1  # 4 bytes an image
    )
    flip = TransformGroups({"train": lambda x: 255 - x})
    flipped = as_classification_dataset(images(4), transform_groups=flip)
    assert "transforms" in resident_tensors(flipped.train())


@pytest.mark.parametrize("kind", ["random", "sequential", "distributed"])
@pytest.mark.parametrize("n", [64, 65, 70])  # 65 % 32 == 1: drop_last
def test_batches_and_random_draws_are_the_loaders(kind, n):
    dataset = as_classification_dataset(images(n)).train()
    drop_last = n % 32 == 1

    def sampler():
        if kind == "distributed":
            return DistributedSampler(dataset, num_replicas=2, rank=1, seed=3)
        return (RandomSampler if kind == "random" else SequentialSampler)(dataset)

    def epochs(loader) -> tuple[list[list[torch.Tensor]], torch.Tensor]:
        torch.manual_seed(0)
        batches = [batch for _ in range(2) for batch in loader]
        return batches, torch.rand(3)  # the global stream after two epochs

    loader = DataLoader(dataset, batch_size=32, sampler=sampler(), drop_last=drop_last)
    resident = ResidentBatches(*resident_tensors(dataset), sampler(), 32, drop_last, "cpu")
    (expected, after), (got, resident_after) = epochs(loader), epochs(resident)
    assert len(resident) == len(loader) == len(got) // 2
    assert len(got) == len(expected)
    for (x, y), (rx, ry) in zip(expected, got, strict=True):
        assert torch.equal(x, rx) and torch.equal(y, ry)
    assert torch.equal(after, resident_after)
    if kind == "random":  # the two epochs were shuffled differently
        assert not torch.equal(got[0][1], got[len(got) // 2][1])


def bench(mode: str, out: Path, stream="digits-periods", options=None, **train) -> BenchConfig:
    return BenchConfig(
        stream=stream,
        strategies="naive,replay",
        train=TrainConfig(
            epochs=2, batch_size=32, device="cpu", seed=0, data_on_device=mode, **train
        ),
        evaluation=EvalConfig(knn_k=(5,), linear_probe=False, kmeans=False, checkpoints=False),
        stream_options=StreamOptions(image_size=8, max_images=40, **(options or {})),
        out=out,
        run_name=mode,
        progress=False,
    )


def test_a_bench_on_device_gives_the_loaders_metrics(tmp_path, monkeypatch):
    epochs = []
    iterate = ResidentBatches.__iter__

    def counted(self):
        epochs.append(len(self))
        yield from iterate(self)

    monkeypatch.setattr(ResidentBatches, "__iter__", counted)
    metrics = {}
    for mode in ("off", "on"):
        result = run_bench(bench(mode, tmp_path))
        assert result.ok, result.failures
        for run in result.strategies:
            metrics[mode, run.directory.parent.name] = pd.read_csv(run.directory / "metrics.csv")
    assert epochs == [2] * 2 * 5 * 2  # 36 images: 2 steps; 2 strategies x 5 experiences x 2
    for strategy in ("naive", "replay"):
        pd.testing.assert_frame_equal(metrics["on", strategy], metrics["off", strategy])


def test_online_batches_on_device_are_the_loaders(tiny_stream, make_template):
    class Record(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.batches: list[torch.Tensor] = []
            self.loaders: list[object] = []

        def before_training_epoch(self, strategy, **kwargs):
            self.loaders.append(strategy.dataloader)

        def before_forward(self, strategy, **kwargs):
            self.batches.append(strategy.mbatch[0].clone())

    runs = {}
    for mode in ("off", "on"):
        record = Record()
        strategy = make_template(
            tiny_stream, [record], online=True, updates_per_batch=2, train_seed=0,
            data_on_device=mode,
        )  # fmt: skip
        strategy.train(tiny_stream.benchmark.train_stream[0])
        runs[mode] = record.batches, [p.detach() for p in strategy.model.parameters()]
        if mode == "on":
            assert isinstance(record.loaders[0].loader, ResidentBatches)
    (batches, weights), (resident, resident_weights) = runs["off"], runs["on"]
    frames = tiny_stream.experiences[0].train.images
    assert torch.equal(torch.cat(resident[::2]), frames)  # arrival order, each batch twice
    assert all(torch.equal(a, b) for a, b in zip(batches, resident, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(weights, resident_weights, strict=True))


def test_data_that_cannot_be_held_stays_on_the_loader_said_once(
    monkeypatch, tiny_stream, make_template
):
    monkeypatch.setattr(device_resident, "_told", set())
    strategy = make_template(tiny_stream, data_on_device="on", device_data_max_mb=1e-6)
    with pytest.warns(UserWarning, match="stays on the loader: its images take 0 MB, over"):
        strategy.train(tiny_stream.benchmark.train_stream[0])
    assert strategy.steps_trained == 4  # 108 images in batches of 32, on the loader
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        device_resident.fall_back("its images take 0 MB, over --device-data-max-mb 1e-06")


class HostReads(TorchFunctionMode):
    """Counts tensor reads on the host (each a wait for the device on a GPU)."""

    NAMES = {"item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__"}

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in self.NAMES:
            self.reads.append(func.__name__)
        return func(*args, **(kwargs or {}))


def test_steps_after_the_first_never_read_a_tensor_on_the_host():
    dataset = as_classification_dataset(images(128)).train()
    resident = ResidentBatches(*resident_tensors(dataset), RandomSampler(dataset), 32, False, "cpu")
    loader = DataLoader(dataset, batch_size=32, shuffle=True)
    for batches, host_reads in ((resident, False), (loader, True)):
        steps = iter(batches)
        next(steps)  # the epoch's order is drawn on the host, once
        with HostReads() as mode:
            assert len(list(steps)) == 3
        assert bool(mode.reads) == host_reads  # the loader reads every label per item


def test_image_files_decoded_per_experience_train_as_with_a_loader_worker(
    tmp_path, digit_folder, monkeypatch
):
    monkeypatch.setattr(device_resident, "_told", set())  # every fall back warns
    metrics = {}
    for mode in ("off", "on"):
        # One persistent loader worker decodes per item: its iterator draws once per experience.
        config = bench(mode, tmp_path, "split", {"dataset": str(digit_folder), "tasks": 2})
        config = dataclasses.replace(config, strategies="naive")
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # no fall back to the loader
            result = run_bench(dataclasses.replace(config, train=dataclasses.replace(
                config.train, workers=1)))  # fmt: skip
        assert result.ok, result.failures
        metrics[mode] = pd.read_csv(result.strategies[0].directory / "metrics.csv")
    pd.testing.assert_frame_equal(metrics["on"], metrics["off"])
