import pytest
import torch

from cl_ssl.kit.fisher import ewc_penalty, ssl_fisher


def test_fisher_is_non_negative_and_leaves_the_model_untouched(tiny_stream, make_template):
    strategy = make_template(tiny_stream)
    strategy.model.train()
    before = {k: v.clone() for k, v in strategy.model.state_dict().items()}
    importances = ssl_fisher(strategy, tiny_stream.benchmark.train_stream[0].dataset, 32)
    assert set(importances) == {n for n, _ in strategy.model.named_parameters()}
    values = torch.cat([imp.data.flatten() for imp in importances.values()])
    assert (values >= 0).all() and values.sum() > 0
    # BatchNorm running statistics and weights are unchanged; mode and grads restored.
    for key, value in strategy.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert strategy.model.training
    assert all(p.grad is None or not p.grad.any() for p in strategy.model.parameters())


def test_fisher_of_one_batch_is_its_squared_gradient(tiny_stream, make_template):
    from torch.utils.data import DataLoader

    strategy = make_template(tiny_stream)
    batch = tiny_stream.benchmark.train_stream[0].dataset.eval().subset(range(16))
    torch.manual_seed(3)
    importances = ssl_fisher(strategy, batch, 16)
    # Same random stream: the DataLoader draws its seed first, then the views are drawn.
    torch.manual_seed(3)
    images, *_ = next(iter(DataLoader(batch, batch_size=16)))
    strategy.model.eval()
    strategy.model.zero_grad()
    strategy.method(strategy.model(strategy.ssl_views(images))).backward()
    for name, param in strategy.model.named_parameters():
        torch.testing.assert_close(importances[name].data, param.grad.pow(2))


def test_penalty_is_zero_at_the_anchor_and_grows_with_the_distance(tiny_stream, make_template):
    from avalanche.training.utils import copy_params_dict

    model = make_template(tiny_stream).model
    anchors = copy_params_dict(model)
    importances = {k: type(v)(k, init_tensor=torch.ones_like(v.data)) for k, v in anchors.items()}
    assert ewc_penalty(model, anchors, importances).item() == 0.0
    first = next(model.parameters())
    penalties = []
    for step in (0.01, 0.1):
        with torch.no_grad():
            first.add_(step)
        penalties.append(ewc_penalty(model, anchors, importances).item())
    assert 0 < penalties[0] < penalties[1]
    # 0.11 offset on every entry of the first parameter, unit importance.
    assert penalties[1] == pytest.approx(0.11**2 * first.numel(), rel=1e-4)


class Scale(torch.nn.Module):
    """f(x) = w * x, with the loss L = mean(f(x)): dL/dw of a micro-batch is its mean x."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        return self.w * x


class Images:
    """What ssl_fisher reads of an experience's dataset: ``len`` and ``.eval()``."""

    def __init__(self, values):
        self.values = values

    def __len__(self):
        return len(self.values)

    def eval(self):
        return torch.utils.data.TensorDataset(self.values)


def stub_strategy(values, train_mb_size):
    from types import SimpleNamespace

    return SimpleNamespace(
        model=Scale(),
        method=lambda output, views: output.mean(),
        ssl_views=lambda images: images,
        train_mb_size=train_mb_size,
        clock=SimpleNamespace(train_exp_counter=0),
        experience=SimpleNamespace(dataset=Images(values)),
        device=torch.device("cpu"),
    )


@pytest.mark.parametrize("train_mb_size", [2, 8])
def test_ewc_importance_is_the_mean_squared_micro_batch_gradient(train_mb_size):
    from cl_ssl.strategies.ewc import EWCOptions, EWCPlugin

    # Images 1..10 in micro-batches of 4: [1..4] (dL/dw = 2.5), [5..8] (6.5); [9, 10] is a
    # remainder, left out. F = (2.5^2 + 6.5^2) / 2 = 24.25 whatever the training batch.
    strategy = stub_strategy(torch.arange(1.0, 11.0), train_mb_size)
    plugin = EWCPlugin(EWCOptions(fisher_batch=4))
    plugin.after_training_exp(strategy)
    assert plugin.importances[0]["w"].data.item() == pytest.approx(24.25)


def test_an_experience_smaller_than_a_micro_batch_is_one_micro_batch():
    importances = ssl_fisher(
        stub_strategy(torch.arange(1.0, 6.0), 32), Images(torch.arange(1.0, 6.0)), 64
    )
    assert importances["w"].data.item() == pytest.approx(3.0**2)  # mean of 1..5, squared
    with pytest.raises(ValueError, match="at least 2"):
        ssl_fisher(stub_strategy(torch.ones(1), 32), Images(torch.ones(1)), 64)


def test_bad_fisher_batches_are_refused():
    from cl_ssl.strategies.ewc import EWCOptions, EWCPlugin

    with pytest.raises(ValueError, match="ewc.fisher-batch must be at least 2"):
        EWCPlugin(EWCOptions(fisher_batch=1))
