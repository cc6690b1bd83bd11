import pytest
import torch

from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.streams import (
    ExperienceData,
    StreamOptions,
    class_groups,
    make_stream,
    select_classes,
    split_indices,
)


def dataset(n: int, label: int = 0) -> ImageTensorDataset:
    return ImageTensorDataset(
        torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8), torch.full((n,), label)
    )


def test_split_is_deterministic_disjoint_and_complete():
    train, test = split_indices(50, 0.1, seed=3)
    again = split_indices(50, 0.1, seed=3)
    assert torch.equal(train, again[0]) and torch.equal(test, again[1])
    assert len(test) == 5 and set(train.tolist()).isdisjoint(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(50))
    assert not torch.equal(test, split_indices(50, 0.1, seed=4)[1])


def test_group_split_never_leaks_a_group():
    groups = [f"vod{i // 7}" for i in range(70)]
    train, test = split_indices(70, 0.2, seed=0, groups=groups)
    train_groups = {groups[i] for i in train.tolist()}
    test_groups = {groups[i] for i in test.tolist()}
    assert test_groups and train_groups.isdisjoint(test_groups)
    assert len(train) + len(test) == 70


def test_make_stream_holds_out_a_test_split_per_experience():
    stream = make_stream(
        "toy",
        [ExperienceData("a", dataset(20)), ExperienceData("b", dataset(30))],
        8,
        StreamOptions(),
    )
    assert [len(e.dataset) for e in stream.benchmark.train_stream] == [18, 27]
    assert [len(e.dataset) for e in stream.benchmark.test_stream] == [2, 3]
    image, label = stream.benchmark.train_stream[0].dataset[0]
    assert image.dtype == torch.uint8 and label == 0


def test_max_images_caps_each_experience():
    stream = make_stream(
        "toy", [ExperienceData("a", dataset(100))], 8, StreamOptions(max_images=30)
    )
    assert len(stream.benchmark.train_stream[0].dataset) == 27


@pytest.mark.parametrize(
    ("options", "test_images"),
    [
        (StreamOptions(), 200),  # no caps: every image of the stream's test set
        (StreamOptions(max_images=90), 10),  # the training cap's 9:1 proportion
        (StreamOptions(max_images=90, max_test_images=50), 50),
        (StreamOptions(max_images=90, max_test_images=0), 200),  # 0: every test image
        (StreamOptions(max_images=90, max_test_images=500), 200),  # a cap above the set
    ],
)
def test_max_test_images_caps_a_test_set_apart_from_training(options, test_images):
    experience = ExperienceData("a", dataset(300), dataset(200, label=1))
    stream = make_stream("toy", [experience], 8, options)
    assert len(stream.benchmark.test_stream[0].dataset) == test_images
    # The training images are the same whatever the test cap: training does not change.
    same_training = make_stream("toy", [experience], 8, StreamOptions(max_images=90))
    if options.max_images == 90:
        a = stream.benchmark.train_stream[0].dataset
        b = same_training.benchmark.train_stream[0].dataset
        assert len(a) == 90 and all(torch.equal(a[i][0], b[i][0]) for i in range(90))


def test_max_test_images_must_not_be_negative():
    with pytest.raises(ValueError, match="max-test-images"):
        StreamOptions(max_test_images=-1)


def test_empty_experience_is_named():
    with pytest.raises(ValueError, match="experience 'late' of stream 'toy' has no images"):
        make_stream("toy", [ExperienceData("late", dataset(0))], 8, StreamOptions())


def test_no_experiences():
    with pytest.raises(ValueError, match="no experiences"):
        make_stream("toy", [], 8, StreamOptions())


def test_unlabeled_stream_is_not_labeled():
    unlabeled = ImageTensorDataset.unlabeled(torch.zeros(10, 3, 4, 4, dtype=torch.uint8))
    assert not make_stream("toy", [ExperienceData("a", unlabeled)], 8, StreamOptions()).is_labeled
    assert make_stream("toy", [ExperienceData("a", dataset(10))], 8, StreamOptions()).is_labeled


def test_class_helpers():
    assert class_groups(10, 5) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert class_groups(10, 3) == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    with pytest.raises(ValueError, match="--tasks"):
        class_groups(10, 11)
    mixed = ImageTensorDataset(
        torch.zeros(6, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 2] * 2)
    )
    assert select_classes(mixed, [0, 2]).labels.tolist() == [0, 2, 0, 2]


def test_val_fraction_replaces_test_by_a_split_of_the_training_images():
    images = torch.arange(60, dtype=torch.uint8).view(60, 1, 1, 1).expand(60, 1, 4, 4).clone()
    full = ImageTensorDataset(images, torch.zeros(60, dtype=torch.long))
    test = ImageTensorDataset(images[:6].clone() + 100, torch.zeros(6, dtype=torch.long))
    experiences = [ExperienceData("e", full, test)]
    plain = make_stream("s", experiences, 4, StreamOptions())
    tuned = make_stream("s", experiences, 4, StreamOptions(val_fraction=0.2))
    assert plain.eval_split == "test" and tuned.eval_split == "val"
    ids = lambda d: set(d.images[:, 0, 0, 0].tolist())  # noqa: E731
    train, val = tuned.experiences[0].train, tuned.experiences[0].test
    assert len(val) == 12 and len(train) == 48
    assert ids(train).isdisjoint(ids(val)) and ids(train) | ids(val) == ids(full)
    assert ids(val).isdisjoint(ids(test))  # the test images are nowhere in the stream
    with pytest.raises(ValueError, match="--val-fraction must be in"):
        StreamOptions(val_fraction=1.0)


def test_a_stream_reports_the_images_its_sources_skipped(tmp_path):
    import numpy as np
    from PIL import Image

    from cl_ssl.registry import streams

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(10):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"img{i}.png")
    (tmp_path / "cat" / "a.jpg").write_text("not an image")  # the first file of the tree
    for stream, options, first_size in (
        ("split", StreamOptions(dataset=str(tmp_path), tasks=2), 10),  # one class a task
        ("pair", StreamOptions(datasets=f"{tmp_path},digits", max_images=50), 20),
    ):
        with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
            built = streams.get(stream)(options)
        assert built.skipped_images == 1, stream
        first = built.experiences[0]
        assert len(first.train) + len(first.test) == first_size
    digits = streams.get("digits-periods")(StreamOptions(image_size=8, max_images=20))
    assert digits.skipped_images == 0
    toy = make_stream("toy", [ExperienceData("a", dataset(10))], 8, StreamOptions(), None, 3)
    assert toy.skipped_images == 3


@pytest.mark.parametrize("val_fraction", [0.3, 0.0], ids=["val-split", "test-split"])
def test_splits_carved_from_training_images_keep_each_group_on_one_side(val_fraction):
    """``ExperienceData.groups`` (a VOD per frame): no group on both sides of a carved split."""
    frames = torch.arange(120, dtype=torch.uint8).view(120, 1, 1, 1).expand(120, 1, 2, 2)
    full = ImageTensorDataset(frames.clone(), torch.zeros(120, dtype=torch.long))
    vods = torch.arange(120) // 8  # 15 VODs of 8 consecutive frames; pixel // 8 is the VOD
    # With a val split the given test set is replaced; without, a test split is carved.
    given_test = full.subset(torch.arange(4)) if val_fraction else None
    options = StreamOptions(val_fraction=val_fraction, max_images=100)
    experience = ExperienceData("e", full, given_test, groups=vods)
    exp = make_stream("s", [experience], 2, options).experiences[0]
    vod = lambda d: {int(x) // 8 for x in d.images[:, 0, 0, 0]}  # noqa: E731
    assert vod(exp.train).isdisjoint(vod(exp.test)) and len(vod(exp.test)) >= 2
    assert exp.groups == [int(x) // 8 for x in exp.train.images[:, 0, 0, 0]]  # still aligned
    with pytest.raises(ValueError, match="3 group ids for 120 training images"):
        ExperienceData("e", full, groups=[0, 1, 2])
    one_vod = ExperienceData("e", full, groups=[0] * 120)
    with pytest.raises(ValueError, match=r"\(120 images in 1 group\(s\)\): give it at least 2 g"):
        make_stream("s", [one_vod], 2, StreamOptions(val_fraction=val_fraction))
