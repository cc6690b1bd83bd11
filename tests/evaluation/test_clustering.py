import numpy as np
import pytest
import torch

from cl_ssl.evaluation.clustering import clustering_scores, kmeans_scores


def test_perfect_clustering_scores_one_even_with_renamed_clusters():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert clustering_scores(np.array([5, 5, 3, 3, 9, 9]), labels) == {"nmi": 1.0, "ari": 1.0}


def test_constant_clustering_scores_zero():
    labels = np.array([0, 0, 1, 1, 2, 2])
    scores = clustering_scores(np.zeros(6, dtype=int), labels)
    assert scores["nmi"] == 0.0 and scores["ari"] == 0.0


def test_kmeans_finds_well_separated_classes():
    torch.manual_seed(0)
    centers = torch.eye(3, 16) * 10
    labels = torch.arange(90) % 3
    features = centers[labels] + 0.1 * torch.randn(90, 16)
    assert kmeans_scores(features, labels) == pytest.approx({"nmi": 1.0, "ari": 1.0})


def test_kmeans_needs_two_classes():
    with pytest.raises(ValueError, match="at least two classes"):
        kmeans_scores(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))
