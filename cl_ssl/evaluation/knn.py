"""Weighted k-nearest-neighbour accuracy on frozen features (Wu et al., CVPR 2018).

For a test feature q, its k most cosine-similar training features n_1..n_k vote for their
classes with weight exp(s(q, n_i) / T); the prediction is the class with the largest total:

    score_c(q) = sum_{i <= k, y_i = c} exp(s(q, n_i) / T),   y_hat = argmax_c score_c(q).

k = 20 and 200 with T = 0.07 are the settings of the SSL literature (InstDisc, DINO,
solo-learn).

Example:
    >>> knn_top1(train.features, train.labels, test.features, test.labels, k=20)
    0.93
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def knn_predict(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
    bank_chunk: int = 16_384,
) -> Tensor:
    """Predicted labels ``[M]`` of ``test_features`` ``[M, F]`` (k capped at the bank size).

    Runs on the bank's device; the queries go there. Similarities are computed
    ``chunk_size`` queries x ``bank_chunk`` bank rows at a time and each chunk's top k merged
    into a running top k, so a bank of any size never holds a full distance matrix. A class
    score tie goes to the smaller label (``argmax`` takes the first); which of several
    neighbours at exactly the k-th similarity is kept is ``torch.topk``'s choice.
    """
    if k < 1 or temperature <= 0:
        raise ValueError(f"kNN needs k >= 1 and temperature > 0, got k={k}, T={temperature}")
    if len(train_features) == 0:
        raise ValueError("kNN needs at least one training feature in its memory bank")
    bank = F.normalize(train_features.float(), dim=1)
    classes, bank_labels = torch.unique(train_labels.to(bank.device), return_inverse=True)
    k = min(k, len(bank))
    predictions = []
    for start in range(0, len(test_features), chunk_size):
        queries = F.normalize(test_features[start : start + chunk_size].to(bank).float(), dim=1)
        similarity, index = nearest(queries, bank, k, bank_chunk)
        weights = (similarity / temperature).exp()
        scores = torch.zeros(len(queries), len(classes), device=bank.device)
        labels = bank_labels[index]
        if scores.device.type == "cpu":
            scores.scatter_add_(1, labels, weights)  # adds in column order
        else:  # CUDA's scatter_add adds in any order: one column at a time is deterministic
            for column in range(k):
                columns = slice(column, column + 1)
                scores.scatter_add_(1, labels[:, columns], weights[:, columns])
        predictions.append(classes[scores.argmax(dim=1)])
    return torch.cat(predictions) if predictions else train_labels.new_zeros(0)


def knn_top1(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Top-1 accuracy (0-1) of :func:`knn_predict` on ``test_labels``."""
    predicted = knn_predict(train_features, train_labels, test_features, k, temperature)
    return float((predicted == test_labels).float().mean())


def nearest(queries: Tensor, bank: Tensor, k: int, bank_chunk: int) -> tuple[Tensor, Tensor]:
    """The k largest ``queries @ bank.T`` per row and their bank indices, best first."""
    first = queries @ bank[:bank_chunk].T
    best_values, best_index = first.topk(min(k, first.shape[1]), dim=1)
    for start in range(bank_chunk, len(bank), bank_chunk):
        similarity = queries @ bank[start : start + bank_chunk].T
        values, index = similarity.topk(min(k, similarity.shape[1]), dim=1)
        # Merge with the running top k, earlier bank rows first.
        values = torch.cat([best_values, values], dim=1)
        index = torch.cat([best_index, index + start], dim=1)
        best_values, order = values.topk(min(k, values.shape[1]), dim=1)
        best_index = index.gather(1, order)
    return best_values, best_index
