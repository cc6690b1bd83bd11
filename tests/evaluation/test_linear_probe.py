import pytest
import torch

from cl_ssl.evaluation.linear_probe import linear_probe_top1


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
