import pytest
import torch

from cl_ssl.evaluation.linear_probe import (
    TorchProbe,
    fit_linear_probe,
    fit_torch_probe,
    linear_probe_top1,
    probe_objective,
    resolve_probe_backend,
)


def test_linearly_separable_features_are_probed_perfectly_and_deterministically():
    torch.manual_seed(0)
    labels = torch.arange(200) % 4
    features = torch.randn(200, 8) + 4 * torch.nn.functional.one_hot(labels, 8).float()
    scores = [
        linear_probe_top1(features[:150], labels[:150], features[150:], labels[150:])
        for _ in range(2)
    ]
    assert scores[0] == scores[1] == 1.0


def test_uninformative_features_stay_near_chance():
    torch.manual_seed(0)
    labels = torch.arange(1000) % 2
    features = torch.randn(1000, 4)
    assert linear_probe_top1(features[:800], labels[:800], features[800:], labels[800:]) < 0.62


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="two classes"):
        linear_probe_top1(torch.randn(4, 2), torch.zeros(4), torch.randn(2, 2), torch.zeros(2))


def digits(binary: bool = False):
    """Raw scikit-learn digits pixels (64-d, 8 of them constant), shuffled, 1,400 to train."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = torch.tensor(x, dtype=torch.float32)[order], torch.tensor(y)[order]
    y = (y > 4).long() if binary else y
    return x[:1400], y[:1400], x[1400:], y[1400:]


def as_probe(pipeline, like: TorchProbe) -> TorchProbe:
    """scikit-learn's fitted weights in a :class:`TorchProbe` (same standardisation)."""
    model = pipeline[-1]
    weight = torch.tensor(model.coef_.T, dtype=torch.float32)
    bias = torch.tensor(model.intercept_, dtype=torch.float32)
    return TorchProbe(like.mean, like.scale, weight, bias, like.classes)


@pytest.mark.parametrize("binary", [False, True])
def test_torch_probe_solves_scikit_learns_problem(binary):
    """Same convex objective: each solution is (near) optimal for the other's objective."""
    train_x, train_y, test_x, test_y = digits(binary)
    sk = fit_linear_probe(train_x, train_y)
    mine = fit_torch_probe(train_x, train_y)
    theirs = as_probe(sk, mine)
    assert torch.allclose(mine.scale, torch.tensor(sk[0].scale_, dtype=torch.float32))
    objective = float(probe_objective(mine, train_x, train_y, 1.0))
    reference = float(probe_objective(theirs, train_x, train_y, 1.0))
    # No worse than scikit-learn's (a penalty off by 2x costs +7% here), and scikit-learn
    # stops at its tolerance a hair above the optimum.
    assert -1e-3 * reference < objective - reference < 1e-6
    # scikit-learn's solution is a stationary point of this module's objective.
    weight = theirs.weight.clone().requires_grad_(True)
    moved = TorchProbe(theirs.mean, theirs.scale, weight, theirs.bias, theirs.classes)
    probe_objective(moved, train_x, train_y, 1.0).backward()
    assert weight.grad.abs().max() < 1e-3
    accuracy_sk = sk.score(test_x.numpy(), test_y.numpy())
    accuracy = float((mine.predict(test_x) == test_y).float().mean())
    assert abs(accuracy - accuracy_sk) <= 0.005 and accuracy > (0.8 if binary else 0.9)


def test_torch_probe_is_deterministic_and_keeps_the_labels():
    train_x, train_y, test_x, _ = digits()
    first, second = (fit_torch_probe(train_x, train_y + 3) for _ in range(2))
    assert torch.equal(first.weight, second.weight) and torch.equal(first.bias, second.bias)
    assert set(first.predict(test_x).tolist()) <= set(range(3, 13))
    with pytest.raises(ValueError, match="two classes"):
        fit_torch_probe(torch.randn(4, 2), torch.zeros(4))


def test_auto_is_torch_on_cuda_and_scikit_learn_elsewhere():
    assert resolve_probe_backend("auto", torch.device("cuda", 0)) == "torch"
    assert resolve_probe_backend("auto", "cpu") == resolve_probe_backend("auto", None) == "sklearn"
    assert resolve_probe_backend("torch", "cpu") == "torch"
    assert resolve_probe_backend("sklearn", "cuda") == "sklearn"
