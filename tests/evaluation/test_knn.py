import pytest
import torch
import torch.nn.functional as F

from cl_ssl.evaluation.knn import knn_predict, knn_top1


def test_features_equal_to_one_hot_labels_give_100_percent():
    labels = torch.arange(40) % 4
    features = F.one_hot(labels, 4).float()
    for k in (1, 5, 20, 200):
        assert knn_top1(features, labels, features[:12], labels[:12], k=k) == 1.0


def test_votes_are_weighted_by_similarity():
    """Two weak neighbours of class 0 lose to one near-identical neighbour of class 1."""
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    labels = torch.tensor([1, 0, 0])
    query = torch.tensor([[1.0, 0.05]])
    assert knn_predict(bank, labels, query, k=3, temperature=0.07).item() == 1
    # With flat weights (huge temperature) the majority wins.
    assert knn_predict(bank, labels, query, k=3, temperature=1e6).item() == 0


def test_labels_need_not_be_contiguous_and_k_is_capped():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([7, 3])
    predicted = knn_predict(bank, labels, torch.tensor([[0.0, 2.0], [3.0, 0.1]]), k=200)
    assert predicted.tolist() == [3, 7]


def test_random_features_score_near_chance():
    torch.manual_seed(0)
    labels = torch.arange(2000) % 10
    accuracy = knn_top1(torch.randn(2000, 32), labels, torch.randn(500, 32), labels[:500])
    assert 0.05 < accuracy < 0.16


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="k >= 1"):
        knn_predict(torch.ones(2, 2), torch.zeros(2), torch.ones(1, 2), k=0)
