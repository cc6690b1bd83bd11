"""Disk-backed datasets: the pixels, labels and splits of memory; caps decode only the kept."""

import numpy as np
import pytest
import torch
from PIL import Image

import cl_ssl.data.files as files
from cl_ssl.data.files import ImageFileDataset, UnreadableImageError, image_batches, in_memory
from cl_ssl.data.image_folder import load_image_folder
from cl_ssl.registry import streams
from cl_ssl.streams import StreamOptions, cap_images, make_stream, split_indices


@pytest.fixture
def photo_folder(tmp_path):
    """Two classes of 40 JPEGs, 48 px (larger than the 16 px training size: draft + resize)."""
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(40):
            smooth = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
            image = Image.fromarray(smooth).resize((48, 48), Image.Resampling.BICUBIC)
            image.save(tmp_path / name / f"{i:03d}.jpg", quality=90)
    return tmp_path


def test_disk_and_memory_give_the_same_images_labels_and_splits(photo_folder):
    on_disk = load_image_folder(photo_folder, size=16)
    # The in-memory path of earlier versions: decode everything, then cap and split.
    everything = on_disk.load()
    for seed in (0, 3):
        lazy = cap_images(on_disk, 50, seed)
        eager = cap_images(everything, 50, seed)
        train_idx, test_idx = split_indices(len(lazy), 0.2, seed)
        for part in (train_idx, test_idx):
            a, b = lazy.subset(part), eager.subset(part)
            decoded = torch.stack([a[i][0] for i in range(len(a))])
            assert torch.equal(decoded, b.images)
            assert torch.equal(a.labels, b.labels) and a.label_names == b.label_names
    assert on_disk.channels == 3 and on_disk.image_size == 16 and everything.image_size == 16


def test_a_cap_decodes_only_the_kept_images(photo_folder, monkeypatch):
    calls = []
    decode = files.decode_file
    monkeypatch.setattr(
        files, "decode_file", lambda path, size: calls.append(path) or decode(path, size)
    )
    options = StreamOptions(datasets=f"{photo_folder},{photo_folder}", max_images=10, image_size=8)
    stream = streams.get("pair")(options)
    assert calls == []  # indexing reads headers only
    first = stream.experiences[0]
    batches = list(image_batches(first.train, batch_size=4))
    assert len(calls) == len(first.train) == 9 and sum(len(b) for b in batches) == 9
    assert set(calls) <= {str(p) for p in first.train.paths}
    assert batches[0].dtype == torch.uint8 and batches[0].shape[1:] == (3, 8, 8)


def test_a_stream_trains_from_disk_with_loader_workers(photo_folder):
    from cl_ssl.strategy_run import loader_options

    dataset = load_image_folder(photo_folder, size=8)
    stream = make_stream("toy", [files_experience(dataset)], 8, StreamOptions())
    options = loader_options(None, stream, torch.device("cpu"))
    assert options["num_workers"] >= 1 and options["persistent_workers"]
    loader = torch.utils.data.DataLoader(dataset, batch_size=16, num_workers=1)
    images = torch.cat([batch for batch, _ in loader])
    assert torch.equal(images, in_memory(dataset).images)
    memory = make_stream("toy", [files_experience(dataset.load())], 8, StreamOptions())
    assert loader_options(None, memory, torch.device("cpu"))["num_workers"] == 0
    assert loader_options(2, memory, torch.device("cpu"))["num_workers"] == 2


def files_experience(dataset):
    from cl_ssl.streams import ExperienceData

    return ExperienceData("all", dataset)


def test_a_file_that_stops_decoding_is_named_with_the_fix(photo_folder):
    dataset = load_image_folder(photo_folder, size=8)
    broken = photo_folder / "cat" / "000.jpg"
    broken.write_bytes(broken.read_bytes()[:200])  # the header still reads, pixels do not
    with pytest.raises(
        UnreadableImageError, match=r"000\.jpg cannot be decoded .*replace or delete"
    ):
        dataset[0]


def test_subsets_take_masks_and_indices_and_keep_paths_compact(photo_folder):
    dataset = load_image_folder(photo_folder, size=8)
    assert isinstance(dataset, ImageFileDataset) and dataset.paths.dtype.kind == "U"
    dogs = dataset.subset(dataset.labels == 1)
    assert len(dogs) == 40 and set(dogs.labels.tolist()) == {1}
    assert dogs.paths[0].endswith("dog/000.jpg") and len(dataset.subset(torch.tensor([3, 1]))) == 2
