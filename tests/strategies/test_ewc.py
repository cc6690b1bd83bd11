import pytest
import torch
from cl_ssl.strategies.ewc import EWCOptions, EWCPlugin


class PenaltySpy(EWCPlugin):
    """Records the EWC term of every step."""

    def __init__(self, options):
        super().__init__(options)
        self.terms: list[float] = []

    def after_training_iteration(self, strategy, *args, **kwargs):
        if "ewc" in strategy.loss_terms:
            self.terms.append(strategy.loss_terms["ewc"].item())


@pytest.mark.parametrize("mode", ["separate", "online"])
def test_penalty_is_zero_at_the_anchor_and_positive_once_weights_move(
    mode, tiny_stream, make_template
):
    spy = PenaltySpy(EWCOptions(lambda_=100.0, mode=mode))
    strategy = make_template(tiny_stream, [spy])
    train = tiny_stream.benchmark.train_stream
    strategy.train(train[0], eval_streams=[])
    assert spy.terms == []  # nothing to consolidate on the first experience
    importances = torch.cat([v.data.flatten() for v in spy.importances[0].values()])
    assert (importances >= 0).all() and importances.sum() > 0
    strategy.train(train[1], eval_streams=[])
    # The first step of experience 1 runs at the anchor weights: penalty exactly 0.
    assert spy.terms[0] == 0.0
    assert all(t > 0 for t in spy.terms[1:])


def test_separate_mode_keeps_one_anchor_per_experience(tiny_stream, make_template):
    spy = EWCPlugin(EWCOptions(mode="separate"))
    strategy = make_template(tiny_stream, [spy])
    for experience in tiny_stream.benchmark.train_stream[:3]:
        strategy.train(experience, eval_streams=[])
    assert sorted(spy.importances) == [0, 1, 2] and sorted(spy.saved_params) == [0, 1, 2]


class ImportanceSpy(EWCPlugin):
    """Keeps each experience's freshly estimated importances (before any decayed sum)."""

    def __init__(self, options):
        super().__init__(options)
        self.fresh: list[dict[str, torch.Tensor]] = []

    def update_importances(self, importances, t):
        self.fresh.append({k: v.data.clone() for k, v in importances.items()})
        super().update_importances(importances, t)


def test_online_mode_decays_the_running_importance(tiny_stream, make_template):
    """Online: F_1 = decay * F_0 + F_new, exactly, anchored at the latest weights."""
    spy = ImportanceSpy(EWCOptions(mode="online", decay=0.3))
    strategy = make_template(tiny_stream, [spy])
    train = tiny_stream.benchmark.train_stream
    strategy.train(train[0], eval_streams=[])
    first = {k: v.data.clone() for k, v in spy.importances[0].items()}
    for name, value in first.items():  # experience 0: the importances as estimated
        assert torch.equal(value, spy.fresh[0][name])
    strategy.train(train[1], eval_streams=[])
    assert sorted(spy.saved_params) == [1] and sorted(spy.importances) == [1]
    total = 0.0
    for name, value in spy.importances[1].items():
        expected = 0.3 * first[name] + spy.fresh[1][name]
        torch.testing.assert_close(value.data, expected, rtol=1e-6, atol=0)
        total += float(first[name].sum())
    assert total > 0  # the decayed part is not a sum of zeros
    for name, param in strategy.model.named_parameters():
        assert torch.equal(spy.saved_params[1][name].data, param.detach())


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="ewc.lambda"):
        EWCPlugin(EWCOptions(lambda_=-1))
