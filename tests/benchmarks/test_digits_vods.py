import pytest
import torch
from cl_ssl.benchmarks.digits_vods import FRAMES, digits_vods

from cl_ssl.data.resolve import harmonise
from cl_ssl.data.vods import VodFrames
from cl_ssl.registry import streams
from cl_ssl.streams import StreamOptions


@pytest.fixture(scope="module")
def built():
    """digits-vods and digits-periods for the same (default) options."""
    options = StreamOptions()
    return streams.get("digits-vods")(options), streams.get("digits-periods")(options)


def by_vod(dataset: VodFrames) -> torch.Tensor:
    """Frames as float ``[VODs, F, C, S, S]``."""
    return dataset.images.float().view(-1, dataset.frames, *dataset.images.shape[1:])


def test_five_periods_of_f_frames_per_digits_periods_training_image(built):
    vods, periods = built
    assert vods.name == "digits-vods" and vods.num_experiences == 5 and vods.is_labeled
    assert vods.image_size == periods.image_size == 16
    assert len(vods.benchmark.train_stream) == 5
    for exp, reference, avalanche in zip(
        vods.experiences, periods.experiences, vods.benchmark.train_stream, strict=True
    ):
        assert isinstance(exp.train, VodFrames) and exp.train.frames == FRAMES
        assert len(exp.train) == FRAMES * len(reference.train) == len(avalanche.dataset)
        assert exp.train.images.shape[1:] == (1, 16, 16)
        n = len(reference.train)
        assert torch.equal(exp.train.vod_ids, torch.arange(n).repeat_interleave(FRAMES))
        assert torch.equal(exp.train.frame_index, torch.arange(FRAMES).repeat(n))


def test_frames_keep_their_source_label_and_start_with_the_source(built):
    vods, periods = built
    for exp, reference in zip(vods.experiences, periods.experiences, strict=True):
        labels = exp.train.labels.view(-1, FRAMES)
        assert (labels == labels[:, :1]).all()
        assert torch.equal(labels[:, 0], reference.train.labels)
        # Frame 0 is the source as harmonise resizes it, the order is the sources' order.
        sources = harmonise(reference.train, 16, 1).images
        assert torch.equal(exp.train.images[::FRAMES], sources)


def test_consecutive_frames_of_a_vod_are_near_duplicates(built):
    vods, _ = built
    for exp in vods.experiences:
        x = by_vod(exp.train)
        consecutive = (x[:, 1:] - x[:, :-1]).abs().mean()
        # The nearest other source image of the same class: the closest a different image
        # gets, a far harder bar than a random other image.
        sources = x[:, 0].flatten(1)
        distance = torch.cdist(sources, sources, p=1) / sources.shape[1]
        labels = exp.train.labels[::FRAMES]
        distance[labels[:, None] != labels[None, :]] = float("inf")
        distance.fill_diagonal_(float("inf"))
        nearest_other = distance.min(dim=1).values.mean()
        assert consecutive < 0.2 * nearest_other, (consecutive, nearest_other)
        different = (x[1:, 0] - x[:-1, 0]).abs().mean()  # consecutive VODs' first frames
        assert consecutive < 0.05 * different
        assert consecutive > 0  # the frames do move


def test_test_splits_are_digits_periods_own(built):
    vods, periods = built
    for exp, reference in zip(vods.experiences, periods.experiences, strict=True):
        assert torch.equal(exp.test.images, reference.test.images)
        assert torch.equal(exp.test.labels, reference.test.labels)
        assert exp.name == reference.name


@pytest.mark.parametrize(
    "options",
    [StreamOptions(split_seed=3, max_images=60), StreamOptions(split_seed=1, val_fraction=0.2)],
    ids=["seed-and-cap", "validation"],
)
def test_other_seeds_caps_and_validation_splits_match_digits_periods(options):
    vods = digits_vods(options)
    periods = streams.get("digits-periods")(options)
    assert vods.eval_split == periods.eval_split
    for exp, reference in zip(vods.experiences, periods.experiences, strict=True):
        assert torch.equal(exp.test.images, reference.test.images)
        assert len(exp.train) == FRAMES * len(reference.train)


def test_deterministic_given_the_seed(built):
    vods, _ = built
    again = digits_vods(StreamOptions())
    other = digits_vods(StreamOptions(split_seed=1))
    for first, second in zip(vods.experiences, again.experiences, strict=True):
        assert torch.equal(first.train.images, second.train.images)
        assert torch.equal(first.test.images, second.test.images)
    assert not torch.equal(vods.experiences[0].train.images, other.experiences[0].train.images)


def test_frames_option_and_bad_options():
    stream = digits_vods(StreamOptions(max_images=40, extra={"frames": "3"}))
    periods = streams.get("digits-periods")(StreamOptions(max_images=40))
    train = stream.experiences[0].train
    assert train.frames == 3 and len(train) == 3 * len(periods.experiences[0].train)
    with pytest.raises(ValueError, match="frames must be a positive integer, got '0'"):
        digits_vods(StreamOptions(extra={"frames": "0"}))
    with pytest.raises(ValueError, match="no --stream-opt 'fps'; choose from: frames"):
        digits_vods(StreamOptions(extra={"fps": "30"}))


def test_validation_split_keeps_each_vod_on_one_side():
    """With --val-fraction no source image is both a training VOD and a validation image."""
    stream = digits_vods(StreamOptions(split_seed=2, val_fraction=0.25, extra={"frames": "3"}))
    assert stream.eval_split == "val"
    for exp in stream.experiences:
        assert exp.groups == exp.train.vod_ids.tolist()
        sources = {bytes(x.numpy()) for x in exp.train.images[::3]}  # frame 0 of each VOD
        val = harmonise(exp.test, 16, 1).images
        assert len(val) and not any(bytes(x.numpy()) in sources for x in val)
        assert len(sources) == len(exp.train) // 3  # every VOD's source once, none twice
