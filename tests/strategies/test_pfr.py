import io
import warnings

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from cl_ssl.strategies.pfr import PFROptions, PFRPlugin

from cl_ssl.bench import run_bench
from cl_ssl.kit.losses.cassle import predict_views
from cl_ssl.state import capture, restore


class ProjectorSpy(PFRPlugin):
    """Records every step's terms and the first regularised step's tensors."""

    def __init__(self, options=None):
        super().__init__(options)
        self.steps: list[dict[str, float]] = []
        self.first_step: dict | None = None

    def before_training_exp(self, strategy, *args, **kwargs):
        super().before_training_exp(strategy, *args, **kwargs)
        if self.teacher.active:
            self.teacher_start = [p.clone() for p in self.teacher.model.parameters()]

    def before_backward(self, strategy, *args, **kwargs):
        rng = torch.get_rng_state()
        had_projector = self.projector is not None
        super().before_backward(strategy, *args, **kwargs)
        if self.teacher.active and not had_projector:
            self.first_step = {
                "rng_unchanged": torch.equal(rng, torch.get_rng_state()),
                "student": strategy.mb_output.features.detach().clone(),
                "teacher": self.teacher(strategy.mb_x).features,
                "projector_start": [p.detach().clone() for p in self.projector.parameters()],
                "total": strategy.loss.item(),
            }

    def after_backward(self, strategy, *args, **kwargs):
        if self.first_step is not None and "term" not in self.first_step:
            with torch.no_grad():  # not stepped yet; batch statistics: same output as the step's
                projected = predict_views(self.projector, self.first_step["student"])
            self.first_step["projected"] = projected
            self.first_step["term"] = strategy.loss_terms["pfr"].item()
            self.first_step["ssl"] = strategy.loss_terms["ssl"].item()

    def after_training_iteration(self, strategy, *args, **kwargs):
        self.steps.append({k: v.item() for k, v in strategy.loss_terms.items()})


def train(stream, make_template, plugins, experiences=2, epochs=1):
    strategy = make_template(stream, plugins, epochs=epochs)
    strategy.train_seed = 0
    for experience in stream.benchmark.train_stream[:experiences]:
        strategy.train(experience, eval_streams=[])
    return strategy


def test_first_experience_is_naive_bit_for_bit(tiny_stream, make_template):
    """No teacher, no projector, no term, no random draw: the same steps and weights."""
    naive_steps = []

    class NaiveSpy(SupervisedPlugin):
        def after_training_iteration(self, strategy, *args, **kwargs):
            naive_steps.append({k: v.item() for k, v in strategy.loss_terms.items()})

    naive = train(tiny_stream, make_template, [NaiveSpy()], experiences=1)
    spy = ProjectorSpy()
    pfr = train(tiny_stream, make_template, [spy], experiences=1)
    assert spy.steps == naive_steps and all(set(s) == {"ssl"} for s in spy.steps)
    assert spy.projector is None and not spy.teacher.active
    for (name, a), (_, b) in zip(
        naive.model.state_dict().items(), pfr.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_first_experience_equals_naive_in_the_bench(tiny_bench):
    naive, pfr = run_bench(tiny_bench("naive,pfr")).strategies
    first = naive.metrics[naive.metrics.train_exp <= 0].drop(columns="strategy")
    second = pfr.metrics[pfr.metrics.train_exp <= 0].drop(columns="strategy")
    pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))
    # From experience 1 on, the term changes training.
    assert not naive.loss_matrix.iloc[1:].equals(pfr.loss_matrix.iloc[1:])


def test_the_term_is_the_negative_cosine_of_projected_backbone_features(tiny_stream, make_template):
    for weight in (1.0, 3.0):
        spy = ProjectorSpy(PFROptions(weight=weight))
        train(tiny_stream, make_template, [spy])
        step = spy.first_step
        p, f = step["projected"], step["teacher"]
        expected = -F.cosine_similarity(p.flatten(0, 1), f.flatten(0, 1), dim=1).mean()
        assert step["term"] == pytest.approx(weight * expected.item(), rel=1e-5)
        assert step["total"] == pytest.approx(step["ssl"] + step["term"], rel=1e-6)
        # On backbone features: the projector is F -> F/2 -> F.
        dim = step["student"].shape[-1]
        assert spy.projector[0].in_features == dim and spy.projector[0].out_features == dim // 2
        assert spy.projector[-1].out_features == dim
        assert all(set(s) == {"ssl", "pfr"} for s in spy.steps[-3:])


def test_projector_learns_while_the_teacher_stays_frozen(tiny_stream, make_template):
    spy = ProjectorSpy()
    strategy = train(tiny_stream, make_template, [spy], epochs=2)
    for now, start in zip(spy.teacher.model.parameters(), spy.teacher_start, strict=True):
        assert torch.equal(now, start) and not now.requires_grad
    moved = [
        not torch.equal(p, s)
        for p, s in zip(spy.projector.parameters(), spy.first_step["projector_start"], strict=True)
    ]
    assert all(moved)
    # Not part of the model users keep; created from its own seed, not the training stream.
    assert not any(p is q for p in strategy.model.parameters() for q in spy.projector.parameters())
    assert spy.first_step["rng_unchanged"]


def test_projector_is_in_the_main_optimizer_once_and_persists(tiny_stream, make_template):
    spy = ProjectorSpy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strategy = train(tiny_stream, make_template, [spy], experiences=2)
        projector = spy.projector
        strategy.train(tiny_stream.benchmark.train_stream[2], eval_streams=[])
    assert spy.projector is projector  # the same module across experiences
    optimizer = strategy.optimizer
    ids = [id(p) for group in optimizer.param_groups for p in group["params"]]
    params = list(projector.parameters())
    assert all(ids.count(id(p)) == 1 for p in params)
    assert len(ids) == len(set(ids)) == len(list(strategy.model.parameters())) + len(params)
    (group,) = [g for g in optimizer.param_groups if any(p is params[0] for p in g["params"])]
    assert group is not optimizer.param_groups[0]
    for key in ("lr", "weight_decay", "betas", "eps"):
        assert group[key] == optimizer.param_groups[0][key], key
    assert all(optimizer.state[p] and optimizer.state[p]["step"] > 0 for p in params)
    assert not [w for w in caught if "param" in str(w.message).lower()]


def test_state_round_trips_and_a_restored_run_continues_exactly(tiny_stream, make_template):
    """Checkpoint after experience 1 (weights_only), restore into a fresh template and plugin:
    experience 2 trains to the same weights and projector, which rejoins the optimizer once."""
    plugin = PFRPlugin()
    full = train(tiny_stream, make_template, [plugin])
    buffer = io.BytesIO()
    torch.save(capture(full, {"pfr": plugin}), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert set(state["plugins"]["pfr"]) == {"weights", "dim"}
    full.train(tiny_stream.benchmark.train_stream[2], eval_streams=[])

    fresh_plugin = PFRPlugin()
    fresh_plugin.load_state_dict(state["plugins"]["pfr"])
    reloaded = fresh_plugin.state_dict()
    for key, value in state["plugins"]["pfr"]["weights"].items():
        assert torch.equal(reloaded["weights"][key], value), key
    assert PFRPlugin().state_dict() == {}  # nothing before the second experience

    fresh_plugin = PFRPlugin()
    resumed = make_template(tiny_stream, [fresh_plugin])
    resumed.train_seed = 0
    restore(resumed, {"pfr": fresh_plugin}, state)
    resumed.train(tiny_stream.benchmark.train_stream[2], eval_streams=[])
    for (name, a), (_, b) in zip(
        full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    for a, b in zip(
        plugin.projector.parameters(), fresh_plugin.projector.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    ids = [id(p) for g in resumed.optimizer.param_groups for p in g["params"]]
    assert all(ids.count(id(p)) == 1 for p in fresh_plugin.projector.parameters())


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (dict(weight=-1), "pfr.weight"),
        (dict(hidden_dim=0), "pfr.hidden-dim"),
        (dict(teacher_bn="train"), "pfr.teacher-bn"),
    ],
)
def test_bad_options_are_rejected(options, match):
    with pytest.raises(ValueError, match=match):  # the options' own checks, or the plugin's
        PFRPlugin(PFROptions(**options))


def test_options_parse_from_the_command_line():
    from cl_ssl.strategy import build_plugins

    (plugin,) = build_plugins(["pfr"], {"pfr": {"weight": "2", "hidden-dim": "16"}})
    assert plugin.options == PFROptions(weight=2.0, hidden_dim=16)
    with pytest.raises(ValueError, match="pfr.weight"):
        build_plugins(["pfr"], {"pfr": {"weight": "-0.5"}})
