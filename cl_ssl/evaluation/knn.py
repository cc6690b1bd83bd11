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
) -> Tensor:
    """Predicted labels ``[M]`` of ``test_features`` ``[M, F]`` (k capped at the bank size)."""
    if k < 1 or temperature <= 0:
        raise ValueError(f"kNN needs k >= 1 and temperature > 0, got k={k}, T={temperature}")
    if len(train_features) == 0:
        raise ValueError("kNN needs at least one training feature in its memory bank")
    bank = F.normalize(train_features.float(), dim=1)
    classes, bank_labels = torch.unique(train_labels, return_inverse=True)
    k = min(k, len(bank))
    predictions = []
    for start in range(0, len(test_features), chunk_size):
        queries = F.normalize(test_features[start : start + chunk_size].float(), dim=1)
        similarity, index = (queries @ bank.T).topk(k, dim=1)
        weights = (similarity / temperature).exp()
        scores = torch.zeros(len(queries), len(classes))
        scores.scatter_add_(1, bank_labels[index], weights)
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
