"""LARS as solo-learn runs it: hand-computed single steps of make_optimizer's optimizer."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from cl_ssl.config import TrainConfig
from cl_ssl.kit.trained_module import TrainedModule
from cl_ssl.strategy_run import make_optimizer


def one_step(lr: float, weight_decay: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One momentum-free step on w = [3, 4] (norm 5), g = [0.6, 0.8] (norm 1); bias 2, g 0.5."""
    model = nn.Linear(2, 1)
    optimizer = make_optimizer(
        TrainConfig(optimizer="lars", lr=lr, weight_decay=weight_decay, momentum=0.0), model
    )
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 4.0]]))
        model.bias.fill_(2.0)
    model.weight.grad = torch.tensor([[0.6, 0.8]])
    model.bias.grad = torch.tensor([0.5])
    optimizer.step()
    return model.weight.detach()[0], model.bias.detach()


def test_adapted_step_uses_trust_coefficient_0_02():
    # r = 0.02 * 5 / (1 + 0.01 * 5) = 0.1 / 1.05; r / lr = 0.952 < 1 (no clipping);
    # w - lr * (r / lr) * (g + wd w) = [3, 4] - (0.1 / 1.05) * [0.63, 0.84] = [2.94, 3.92].
    # (Lightly's eta 0.001 would give [2.9997, 3.9996].)
    weight, bias = one_step(lr=0.1, weight_decay=0.01)
    torch.testing.assert_close(weight, torch.tensor([2.94, 3.92]))
    # The bias is neither adapted nor decayed: 2 - 0.1 * 0.5.
    torch.testing.assert_close(bias, torch.tensor([1.95]))


def test_adapted_rate_is_clipped_at_the_learning_rate():
    # r / lr = 95.2 -> 1: the step is plain lr * (g + wd w) = 0.001 * [0.63, 0.84].
    weight, _ = one_step(lr=0.001, weight_decay=0.01)
    torch.testing.assert_close(weight, torch.tensor([3 - 0.00063, 4 - 0.00084]))


def test_zero_weight_decay_still_adapts():
    # r = 0.02 * 5 / 1 = 0.1, r / lr = 0.1: w - 1 * 0.1 * g = [2.94, 3.92]; plain SGD (what
    # Lightly's LARS does when the weight decay is 0) would give [2.4, 3.2].
    weight, bias = one_step(lr=1.0, weight_decay=0.0)
    torch.testing.assert_close(weight, torch.tensor([2.94, 3.92]))
    torch.testing.assert_close(bias, torch.tensor([1.5]))


def test_momentum_accumulates_the_adapted_step():
    model = nn.Linear(2, 1, bias=False)
    optimizer = make_optimizer(
        TrainConfig(optimizer="lars", lr=1.0, weight_decay=0.0, momentum=0.5), model
    )
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 4.0]]))
    for _ in range(2):
        model.weight.grad = torch.tensor([[0.6, 0.8]])
        optimizer.step()
    # Step 1: d = 0.1 g = [0.06, 0.08] -> w = [2.94, 3.92] (norm 4.9).
    # Step 2: d = 0.02 * 4.9 g = [0.0588, 0.0784], v = 0.5 * [0.06, 0.08] + d.
    expected = torch.tensor([2.94 - 0.03 - 0.0588, 3.92 - 0.04 - 0.0784])
    torch.testing.assert_close(model.weight.detach()[0], expected)


def test_a_lightly_lars_checkpoint_resumes_as_lightly_ran_it():
    model = nn.Linear(2, 1)
    optimizer = make_optimizer(TrainConfig(optimizer="lars", lr=0.1), model)
    saved = optimizer.state_dict()
    for group in saved["param_groups"]:
        del group["clip_lr"], group["lars_adapt"]  # keys Lightly's LARS never wrote
    optimizer.load_state_dict(saved)
    assert [g["clip_lr"] for g in optimizer.param_groups] == [False, False]
    assert [g["lars_adapt"] for g in optimizer.param_groups] == [True, False]


@pytest.mark.parametrize("name", ["lars", "sgd"])
def test_a_trained_modules_batchnorm_and_bias_are_neither_decayed_nor_adapted(name):
    model = nn.Linear(4, 4)
    optimizer = make_optimizer(TrainConfig(optimizer=name, lr=0.1, weight_decay=1e-4), model)
    strategy = SimpleNamespace(
        optimizer=optimizer,
        experience=SimpleNamespace(current_experience=0),
        train_seed=0,
        device=torch.device("cpu"),
    )
    predictor = TrainedModule(
        "cassle", lambda dim: nn.Sequential(nn.Linear(dim, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    ).get(strategy, dim=4)
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    for module in predictor.modules():
        for kind, param in module.named_parameters(recurse=False):
            group = group_of[id(param)]
            excluded = isinstance(module, nn.BatchNorm1d) or kind == "bias"
            assert group["weight_decay"] == (0.0 if excluded else 1e-4), (module, kind)
            assert group.get("lars_adapt", True) is not excluded, (module, kind)
            assert group["lr"] == optimizer.param_groups[0]["lr"]
