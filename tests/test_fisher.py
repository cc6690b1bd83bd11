import pytest
import torch

from cl_ssl.fisher import ewc_penalty, ssl_fisher


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
