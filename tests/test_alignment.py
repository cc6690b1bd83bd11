"""Every strategy sees the same batches and views in every experience, not just the first."""

import torch
from avalanche.core import SupervisedPlugin

from cl_ssl.strategy import build_plugins
from cl_ssl.template import experience_seed


class FirstBatch(SupervisedPlugin):
    """Keeps the raw images and the augmented views of each experience's first step."""

    def __init__(self):
        super().__init__()
        self.raw, self.views = {}, {}

    def before_forward(self, strategy, **kwargs):
        k = strategy.experience.current_experience
        if k not in self.raw:
            self.raw[k] = strategy.mb_x.clone()

    def before_backward(self, strategy, **kwargs):
        k = strategy.experience.current_experience
        self.views.setdefault(k, strategy.mb_x.clone())


def first_batches(stream, make_template, names):
    recorder = FirstBatch()
    strategy = make_template(stream, [*build_plugins(names), recorder])
    strategy.train_seed = 0
    for experience in stream.benchmark.train_stream[:3]:
        strategy.train(experience)
    return recorder


def test_naive_and_ewc_see_the_same_batch_and_views_in_experience_2(tiny_stream, make_template):
    # EWC's Fisher pass after each experience draws augmentations from the global random
    # stream; without per-experience reseeding the two runs diverge from experience 1 on.
    naive = first_batches(tiny_stream, make_template, ["naive"])
    ewc = first_batches(tiny_stream, make_template, ["ewc"])
    for k in (0, 1, 2):
        assert torch.equal(naive.raw[k], ewc.raw[k]), k
        assert torch.equal(naive.views[k], ewc.views[k]), k
    assert naive.raw[2].dtype == torch.uint8 and naive.views[2].shape[1] == 2


def test_experience_seeds_differ_by_seed_experience_and_stream():
    seeds = {experience_seed(s, k, name) for s in (0, 1) for k in (0, 1) for name in ("a", "b")}
    assert len(seeds) == 8
    assert experience_seed(3, 2, "replay") == experience_seed(3, 2, "replay")
