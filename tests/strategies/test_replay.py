import pytest
import torch
from avalanche.core import SupervisedPlugin
from cl_ssl.strategies.replay import ReplayOptions, ReplayPlugin, materialise

from cl_ssl.template import experience_seed


class BatchSpy(ReplayPlugin):
    """Records each step's batch size and the buffer after each experience."""

    def __init__(self, options):
        super().__init__(options)
        self.batch_sizes: list[list[int]] = []
        self.buffer_labels: list[set[int]] = []
        self.buffer_sizes: list[int] = []

    def before_training_exp(self, strategy, *args, **kwargs):
        super().before_training_exp(strategy, *args, **kwargs)
        self.batch_sizes.append([])

    def after_forward(self, strategy, *args, **kwargs):
        self.batch_sizes[-1].append(strategy.mb_x.shape[0])

    def after_training_exp(self, strategy, *args, **kwargs):
        super().after_training_exp(strategy, *args, **kwargs)
        buffer = self.storage_policy.buffer
        self.buffer_sizes.append(len(buffer))
        self.buffer_labels.append({int(buffer[i][1]) for i in range(len(buffer))})


class RawBatches(SupervisedPlugin):
    """Each training step's raw images and labels, as the template is about to augment them
    (registered after the replay plugin, so it sees the batch replay made)."""

    def __init__(self):
        super().__init__()
        self.steps: dict[int, list[tuple[torch.Tensor, ...]]] = {}

    def before_forward(self, strategy, *args, **kwargs):
        k = strategy.experience.current_experience
        self.steps.setdefault(k, []).append(tuple(t.clone() for t in strategy.mbatch))


def run(stream, make_template, plugins, experiences=3, epochs=1):
    raw = RawBatches()
    strategy = make_template(stream, [*plugins, raw], epochs=epochs, batch_size=32)
    strategy.train_seed = 0
    for experience in stream.benchmark.train_stream[:experiences]:
        strategy.train(experience, eval_streams=[])
    return raw.steps


@pytest.mark.parametrize("policy", ["experience-balanced", "reservoir"])
def test_buffer_is_bounded_and_holds_every_past_experience(policy, tiny_stream, make_template):
    spy = BatchSpy(ReplayOptions(mem_size=40, policy=policy, batch_size_mem=16))
    strategy = make_template(tiny_stream, [spy])
    for experience in tiny_stream.benchmark.train_stream:
        strategy.train(experience, eval_streams=[])
    assert spy.buffer_sizes == [40] * 5
    # digits-periods period k holds digits {2k, 2k+1}: labels tell where an image came from.
    for k, labels in enumerate(spy.buffer_labels):
        periods = {label // 2 for label in labels}
        assert periods == set(range(k + 1)), (k, labels)


def test_equal_mode_keeps_naives_steps_and_replaces_the_second_half(tiny_stream, make_template):
    naive = run(tiny_stream, make_template, [])
    replay = run(tiny_stream, make_template, [ReplayPlugin(ReplayOptions(mem_size=40))])
    batch = 32
    for k in (1, 2):
        assert [len(s[0]) for s in replay[k]] == [len(s[0]) for s in naive[k]]  # same steps
        replayed_labels = []
        for (images, labels, *rest), (n_images, n_labels, *_) in zip(
            replay[k], naive[k], strict=True
        ):
            size = len(images)
            count = size * (batch // 2) // batch  # half of every step (16, and 6 of 12)
            assert all(len(t) == size for t in (labels, *rest)) and images.dtype == torch.uint8
            # Same loader, same order: the first half is naive's first half ...
            assert torch.equal(images[: size - count], n_images[: size - count])
            assert torch.equal(labels[: size - count], n_labels[: size - count])
            # ... and the rest comes from the buffer of earlier experiences.
            assert all(int(y) // 2 < k for y in labels[size - count :])
            assert all(int(y) // 2 == k for y in n_labels)
            replayed_labels += labels[size - count :].tolist()
        assert {y // 2 for y in replayed_labels} == set(range(k))  # every past period replayed
    assert [len(s[0]) for s in replay[0]] == [len(s[0]) for s in naive[0]]


class GlobalNoise(SupervisedPlugin):
    """Draws from the global random stream before every step (registered before replay), a
    different amount each step, so anything drawn from the global stream after it moves."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def before_forward(self, strategy, *args, **kwargs):
        self.steps += 1
        torch.rand(self.steps * 7)


def test_equal_mode_draws_replayed_images_from_its_own_seed(tiny_stream, make_template):
    """The replayed rows of every step are the draws of the plugin's own generator, seeded
    with experience_seed(train_seed, k, "replay"), however the global stream was consumed."""
    replay = ReplayPlugin(ReplayOptions(mem_size=40))
    raw = RawBatches()
    strategy = make_template(tiny_stream, [GlobalNoise(), replay, raw], batch_size=32)
    strategy.train_seed = 3
    train = tiny_stream.benchmark.train_stream
    strategy.train(train[0], eval_streams=[])
    memory = materialise(replay.storage_policy.buffer, "cpu")  # what experience 1 replays
    strategy.train(train[1], eval_streams=[])
    generator = torch.Generator().manual_seed(experience_seed(3, 1, "replay"))
    assert len(raw.steps[1]) == 4  # 108 images: 3 steps of 32 and one of 12
    for batch in raw.steps[1]:
        size = len(batch[0])
        count = size * 16 // 32
        index = torch.randperm(len(memory[0]), generator=generator)[:count]
        for field, stored in zip(batch, memory, strict=True):
            assert torch.equal(field[size - count :], stored[index].to(field.dtype))


def test_double_mode_adds_a_buffer_batch_to_every_step(tiny_stream, make_template):
    spy = BatchSpy(ReplayOptions(mem_size=64, mode="double"))
    strategy = make_template(tiny_stream, [spy], batch_size=32)
    for experience in tiny_stream.benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    first, second = spy.batch_sizes
    assert sum(first) == len(tiny_stream.benchmark.train_stream[0].dataset)
    # Every step of experience 1 carries its current images plus B = 32 buffered ones.
    current = len(tiny_stream.benchmark.train_stream[1].dataset)
    current_parts = [min(32, current - 32 * i) for i in range(len(second))]
    assert sum(current_parts) == current
    assert [s - c for s, c in zip(second, current_parts, strict=True)] == [32] * len(second)
    assert second[0] == 64  # a full step is 2B


class RawAndViews(RawBatches):
    """Each step's raw rows (after replay) and the augmented views the model received."""

    def __init__(self):
        super().__init__()
        self.views: list[torch.Tensor] = []

    def after_forward(self, strategy, *args, **kwargs):
        if strategy.experience.current_experience == 1:
            self.views.append(strategy.mb_x.detach().clone())


def test_buffer_images_are_raw_and_augmented_freshly(tiny_stream, make_template):
    """The buffer stores dataset items (raw uint8 source images, not views); the template
    augments a buffered image anew each time it is replayed."""
    source = tiny_stream.experiences[0].train
    plugin = ReplayPlugin(ReplayOptions(mem_size=8))
    plugin.storage_policy.post_adapt(None, tiny_stream.benchmark.train_stream[0])
    buffer = plugin.storage_policy.buffer
    assert len(buffer) == 8
    for i in range(len(buffer)):
        image, label, *_ = buffer[i]
        assert image.dtype == torch.uint8 and image.shape == source.images.shape[1:]
        matches = [j for j in range(len(source)) if torch.equal(source.images[j], image)]
        assert matches and int(source.labels[matches[0]]) == int(label), i

    # Train with a buffer of 8: experience 1 replays 54 rows, so every image many times.
    replay, spy = ReplayPlugin(ReplayOptions(mem_size=8)), RawAndViews()
    strategy = make_template(tiny_stream, [replay, spy], batch_size=32)
    strategy.train_seed = 0
    strategy.train(tiny_stream.benchmark.train_stream[0], eval_streams=[])
    stored = materialise(replay.storage_policy.buffer, "cpu")[0]  # what experience 1 replays
    strategy.train(tiny_stream.benchmark.train_stream[1], eval_streams=[])
    replays: dict[int, list[torch.Tensor]] = {}  # buffer row -> the views of each replay
    for (images, *_), views in zip(spy.steps[1], spy.views, strict=True):
        count = len(images) // 2
        for row in range(len(images) - count, len(images)):
            (slot,) = [s for s in range(len(stored)) if torch.equal(stored[s], images[row])]
            replays.setdefault(slot, []).append(views[row])  # [2, 3, 8, 8]
    assert len(replays) == 8 and all(len(v) >= 2 for v in replays.values())
    for views in replays.values():
        firsts = torch.stack([v[0] for v in views])  # view 0 of every replay of one image
        distinct = {tuple(f.flatten().tolist()) for f in firsts}
        assert len(distinct) == len(firsts)  # never the same view twice


def test_equal_mode_needs_room_for_new_images(tiny_stream, make_template):
    strategy = make_template(tiny_stream, [ReplayPlugin(ReplayOptions(batch_size_mem=32))])
    strategy.train(tiny_stream.benchmark.train_stream[0], eval_streams=[])
    with pytest.raises(ValueError, match="replay.batch-size-mem=32"):
        strategy.train(tiny_stream.benchmark.train_stream[1], eval_streams=[])


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(mem_size=0), "replay.mem-size"),
        (dict(mode="triple"), "replay.mode"),
        (dict(batch_size_mem=0), "replay.batch-size-mem"),
    ],
)
def test_bad_options_are_rejected(options, match):
    with pytest.raises(ValueError, match=match):  # the options' own checks, or the plugin's
        ReplayPlugin(ReplayOptions(**options))
