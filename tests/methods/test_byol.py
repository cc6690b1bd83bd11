import copy
import math

import pytest
import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import loss_metrics
from avalanche.training.plugins import EvaluationPlugin

from cl_ssl.augment import AugmentConfig, make_augment
from cl_ssl.bench import make_optimizer
from cl_ssl.config import TrainConfig
from cl_ssl.methods import build_method
from cl_ssl.methods.byol import BYOL, BYOLOptions, momentum_at
from cl_ssl.methods.simsiam import symmetric_negative_cosine
from cl_ssl.models.ssl_model import SSLModel
from cl_ssl.registry import backbones
from cl_ssl.template import SSLTemplate

SMALL = BYOLOptions(hidden_dim=64, output_dim=32, pred_hidden_dim=32)


def byol_model(options: BYOLOptions = SMALL, seed: int = 0) -> tuple[SSLModel, BYOL]:
    torch.manual_seed(seed)
    method = BYOL(options)
    backbone = backbones.get("small_resnet")(8)
    model = SSLModel(backbone, method.make_head(backbone.feature_dim), method.make_predictor())
    method.setup(model)
    return model, method


def target_params(method: BYOL) -> list[torch.Tensor]:
    return [p.detach().clone() for p in method.target_backbone.parameters()] + [
        p.detach().clone() for p in method.target_head.parameters()
    ]


def online_params(model: SSLModel) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.backbone.parameters()] + [
        p.detach().clone() for p in model.head.parameters()
    ]


def d(p, z):
    return -F.cosine_similarity(p, z, dim=-1).mean()


def test_setup_builds_a_frozen_copy_that_the_state_dict_holds():
    model, method = byol_model()
    assert BYOL(SMALL).state_dict() == {}  # nothing before setup
    for online, target in zip(online_params(model), target_params(method), strict=True):
        assert torch.equal(online, target)
    assert not any(p.requires_grad for p in method.parameters())
    keys = method.state_dict().keys()
    assert any(k.startswith("target_backbone.") for k in keys)
    assert any(k.startswith("target_head.") for k in keys)
    # Not the model's parameters: the optimizer (built from the model) never sees the target.
    target_ids = {id(p) for p in method.parameters()}
    assert not target_ids & {id(p) for p in model.parameters()}


def test_loss_is_the_symmetric_negative_cosine_against_the_target():
    model, method = byol_model()
    views = torch.randn(8, 2, 3, 8, 8)
    output = model(views)
    reference = copy.deepcopy(model).train()  # the target equals the online net at setup
    with torch.no_grad():
        zt = reference.head(reference.backbone(views.flatten(0, 1))).view(8, 2, -1)
    p = output.predictions
    expected = 0.5 * d(p[:, 0], zt[:, 1]) + 0.5 * d(p[:, 1], zt[:, 0])
    assert torch.allclose(method(output, views), expected, atol=1e-6)


def test_no_gradient_reaches_the_target():
    model, method = byol_model()
    views = torch.randn(8, 2, 3, 8, 8)
    method(model(views), views).backward()
    assert all(p.grad is None for p in method.parameters())
    assert all(p.grad is not None for p in model.predictor.parameters())
    zt = method.target_projections(views)
    assert not zt.requires_grad and zt.grad_fn is None


def test_momentum_schedule_matches_the_closed_form():
    base, total = 0.99, 11

    def closed_form(step):  # BYOL: 1 - (1 - base) (cos(pi k / (K - 1)) + 1) / 2, k = step - 1
        return 1 - (1 - base) * (math.cos(math.pi * (step - 1) / (total - 1)) + 1) / 2

    assert momentum_at(1, total, base) == pytest.approx(base, abs=1e-12)
    assert momentum_at(6, total, base) == pytest.approx((base + 1) / 2, abs=1e-12)
    assert momentum_at(total, total, base) == 1.0
    for step in (2, 3, 7, 10):
        assert momentum_at(step, total, base) == pytest.approx(closed_form(step), abs=1e-12)
    assert momentum_at(1, 1, base) == base  # a one-step experience still moves the target
    steps = [momentum_at(s, total, base) for s in range(1, total + 1)]
    assert steps == sorted(steps)


def test_target_moves_only_by_ema_during_training(tiny_stream):
    """Every template step: target = m * old target + (1 - m) * updated online, exactly."""

    class Watch(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.momenta, self.expected_momenta = [], []

        def before_update(self, strategy, **kwargs):
            self.old = target_params(strategy.method)
            assert all(p.grad is None for p in strategy.method.parameters())

        def after_update(self, strategy, **kwargs):
            method, model = strategy.method, strategy.model
            m = method.last_momentum
            step = strategy.clock.train_exp_iterations + 1
            self.momenta.append(m)
            self.expected_momenta.append(
                momentum_at(step, strategy.steps_per_epoch * strategy.train_epochs, 0.99)
            )
            new = target_params(method)
            for old, online, target in zip(self.old, online_params(model), new, strict=True):
                assert torch.equal(target, torch.add(old * m, online, alpha=1 - m))

    torch.manual_seed(0)
    model, method = byol_model()
    watch = Watch()
    strategy = SSLTemplate(
        model=model,
        optimizer=make_optimizer(TrainConfig(lr=2e-3), model),
        method=method,
        augment=make_augment("batched", AugmentConfig(input_size=8)),
        train_mb_size=32,
        train_epochs=2,
        eval_mb_size=64,
        plugins=[watch],
        evaluator=EvaluationPlugin(loss_metrics(experience=True), loggers=[]),
    )
    before = target_params(method)
    strategy.train(tiny_stream.benchmark.train_stream[0], eval_streams=[])
    assert len(watch.momenta) == 8  # 108 images, batch 32, two epochs
    assert watch.momenta == watch.expected_momenta
    assert watch.momenta[0] == 0.99 and watch.momenta[-1] == 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before, target_params(method), strict=True))
    assert all(p.grad is None for p in method.parameters())


def test_target_batchnorm_uses_batch_statistics_and_keeps_its_buffers():
    model, method = byol_model()
    buffers = {k: v.clone() for k, v in method.state_dict().items() if "running" in k}
    views = torch.randn(8, 2, 3, 8, 8)
    first = method.target_projections(views)
    method.eval()  # no effect: the target always normalises with the batch
    assert torch.equal(method.target_projections(views), first)
    with torch.no_grad():
        reference = copy.deepcopy(model).train()
        expected = reference.head(reference.backbone(views.flatten(0, 1))).view(8, 2, -1)
    assert torch.allclose(first, expected, atol=1e-6)
    for key, value in buffers.items():
        assert torch.equal(method.state_dict()[key], value), key


def test_state_round_trip_restores_the_target():
    model, method = byol_model()
    views = torch.randn(8, 2, 3, 8, 8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    method(model(views), views).backward()
    optimizer.step()
    method.after_step(model, 1, 4)  # the target is no longer a copy of the model

    fresh_model, fresh = byol_model(seed=1)
    fresh.load_state_dict(method.state_dict())
    assert torch.equal(fresh.target_projections(views), method.target_projections(views))
    with pytest.raises(RuntimeError):
        BYOL(SMALL).load_state_dict(method.state_dict())  # the target exists after setup only


def test_views_and_setup_are_required():
    model, method = byol_model()
    views = torch.randn(4, 2, 3, 8, 8)
    with pytest.raises(ValueError, match="views"):
        method(model(views))
    with pytest.raises(RuntimeError, match="setup"):
        BYOL(SMALL).after_step(model, 1, 10)


def byol_loss_func(p, z):
    """The reference's loss (cassle/losses/byol.py): 2 - 2 * mean cosine."""
    return 2 - 2 * F.cosine_similarity(p, z, dim=-1).mean()


def test_pair_loss_is_the_negative_cosine():
    method = BYOL()
    pair = torch.randn(8, 2, 16, requires_grad=True)
    assert torch.allclose(method.loss(pair), d(pair[:, 0], pair[:, 1]))
    method.loss(pair).backward()
    assert torch.equal(pair.grad[:, 1], torch.zeros(8, 16))


def test_distillation_keeps_the_references_two_to_one_ratio():
    """CaSSLe's BYOL: L_ref = sum_v byol_loss_func(p^v, zt^v'), distillation (predictive.py)
    = mean_v byol_loss_func(q^v, t^v); here both are in this loss's units, L_ref / 4 - 1."""
    torch.manual_seed(0)
    p, zt = torch.randn(8, 2, 16), torch.randn(8, 2, 16)
    q, t = torch.randn(8, 2, 16), torch.randn(8, 2, 16)
    ssl = symmetric_negative_cosine(p, zt)
    reference_ssl = byol_loss_func(p[:, 0], zt[:, 1]) + byol_loss_func(p[:, 1], zt[:, 0])
    reference_distill = (byol_loss_func(q[:, 0], t[:, 0]) + byol_loss_func(q[:, 1], t[:, 1])) / 2
    distill = BYOL().distillation_loss(q, t)
    assert distill.item() == pytest.approx(reference_distill.item() / 4, rel=1e-6)
    total = ssl + distill
    assert total.item() == pytest.approx((reference_ssl + reference_distill).item() / 4 - 1)
    # Analytic: on the teacher 0; opposite 1 (4 / 4); orthogonal 1/2 (2 / 4).
    e = torch.eye(4).view(2, 2, 4)
    assert BYOL().distillation_loss(e, e).item() == pytest.approx(0, abs=1e-7)
    assert BYOL().distillation_loss(-e, e).item() == pytest.approx(1)
    assert BYOL().distillation_loss(e.roll(1, -1), e).item() == pytest.approx(0.5)


def test_pnr_negative_is_byol_pnrs_term_in_this_loss_units():
    """byol_pnr.py: negative_lamb (0.5) * (byol_loss_func(p1, z2) + byol_loss_func(p2, z1)) / 2,
    divided by 4 like the rest of the objective."""
    torch.manual_seed(1)
    q = torch.randn(8, 2, 16, requires_grad=True)
    negatives = torch.randn(8, 2, 16, requires_grad=True)
    term = BYOL().pnr_negative(q, negatives)
    per_view = [byol_loss_func(q[:, v], negatives[:, v]) for v in (0, 1)]
    expected = 0.5 * (per_view[0] + per_view[1]) / 2
    assert term.item() == pytest.approx(expected.item() / 4, rel=1e-6)
    term.backward()
    assert negatives.grad is None and q.grad.abs().sum() > 0


def test_options_follow_the_paper_and_are_checked():
    method = build_method("byol", {"byol": {"base-momentum": "0.996"}})
    assert method.options == BYOLOptions(4096, 256, 4096, 0.996, 1.0)
    head, predictor = method.make_head(16), method.make_predictor()
    assert head(torch.randn(4, 16)).shape == (4, 256)
    assert predictor(torch.randn(4, 256)).shape == (4, 256)
    with pytest.raises(ValueError, match="base-momentum"):
        BYOLOptions(base_momentum=1.5)
    assert method.augment_config(32).jitter() == (0.4, 0.4, 0.2, 0.1)
