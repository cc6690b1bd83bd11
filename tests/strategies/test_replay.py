import pytest
import torch

from strategies.replay import ReplayOptions, ReplayPlugin


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


def test_buffered_images_join_every_batch_after_the_first_experience(tiny_stream, make_template):
    spy = BatchSpy(ReplayOptions(mem_size=40, batch_size_mem=16))
    strategy = make_template(tiny_stream, [spy], batch_size=32)
    for experience in tiny_stream.benchmark.train_stream[:2]:
        strategy.train(experience, eval_streams=[])
    first, second = spy.batch_sizes
    assert sum(first) == len(tiny_stream.benchmark.train_stream[0].dataset)
    # Every step of experience 1 carries its current images plus up to 16 from the buffer
    # (Avalanche cycles the 40 buffered images in batches of 16, 16, 8).
    current = len(tiny_stream.benchmark.train_stream[1].dataset)
    current_parts = [min(32, current - 32 * i) for i in range(len(second))]
    extra = [s - c for s, c in zip(second, current_parts, strict=True)]
    assert all(0 < e <= 16 for e in extra), extra
    assert sum(current_parts) == current


def test_buffer_images_are_raw_and_augmented_freshly(tiny_stream):
    """The buffer stores dataset items (raw uint8), not views."""
    plugin = ReplayPlugin(ReplayOptions(mem_size=8))
    experience = tiny_stream.benchmark.train_stream[0]
    plugin.storage_policy.post_adapt(None, experience)
    image, _label, *_ = plugin.storage_policy.buffer[0]
    assert image.dtype == torch.uint8 and len(plugin.storage_policy.buffer) == 8


def test_bad_memory_size_is_rejected():
    with pytest.raises(ValueError, match="replay.mem-size"):
        ReplayPlugin(ReplayOptions(mem_size=0))
