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


def test_online_mode_decays_the_running_importance(tiny_stream, make_template):
    spy = EWCPlugin(EWCOptions(mode="online", decay=0.5))
    strategy = make_template(tiny_stream, [spy])
    train = tiny_stream.benchmark.train_stream
    strategy.train(train[0], eval_streams=[])
    first = {k: v.data.clone() for k, v in spy.importances[0].items()}
    strategy.train(train[1], eval_streams=[])
    assert sorted(spy.saved_params) == [1]  # one anchor: the latest weights
    for name, value in spy.importances[1].items():
        assert (value.data >= 0.5 * first[name] - 1e-12).all()


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="ewc.lambda"):
        EWCPlugin(EWCOptions(lambda_=-1))
