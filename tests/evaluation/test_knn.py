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


def todays_knn(bank, labels, queries, k, temperature=0.07):
    """The kNN before bank chunks: one full similarity matrix, one top k per row."""
    bank = F.normalize(bank, dim=1)
    classes, bank_labels = torch.unique(labels, return_inverse=True)
    similarity, index = (F.normalize(queries, dim=1) @ bank.T).topk(min(k, len(bank)), dim=1)
    scores = torch.zeros(len(queries), len(classes))
    scores.scatter_add_(1, bank_labels[index], (similarity / temperature).exp())
    return classes[scores.argmax(dim=1)]


@pytest.mark.parametrize("k", [1, 20, 200])
def test_bank_chunks_predict_exactly_as_one_full_similarity_matrix(k):
    torch.manual_seed(0)
    centers = torch.randn(10, 16)
    labels = torch.arange(2000) % 10
    bank = centers[labels] + 2 * torch.randn(2000, 16)  # classes overlap: close votes
    queries = centers[labels[:200]] + 2 * torch.randn(200, 16)
    expected = todays_knn(bank, labels, queries, k)
    assert 0.3 < float((expected == labels[:200]).float().mean()) < 0.95  # not trivial
    for bank_chunk in (7, 300, 2000):  # 286 chunks (fewer rows than k), 7, one
        predicted = knn_predict(bank, labels, queries, k, chunk_size=128, bank_chunk=bank_chunk)
        assert torch.equal(predicted, expected), bank_chunk


@pytest.mark.parametrize("bank_chunk", [1, 2, 100])
def test_a_tie_of_class_scores_goes_to_the_smaller_label_in_every_chunking(bank_chunk):
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([9, 4, 4, 9])  # each class has one neighbour at either angle
    query = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    predicted = knn_predict(bank, labels, query, k=4, bank_chunk=bank_chunk)
    assert predicted.tolist() == [4, 4] == todays_knn(bank, labels, query, k=4).tolist()
