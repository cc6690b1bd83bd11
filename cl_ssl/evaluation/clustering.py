"""k-means clustering quality of frozen features: NMI and ARI against the labels.

k-means (scikit-learn, k = number of classes, fixed seed) runs on L2-normalised features;
normalised mutual information and the adjusted Rand index compare its clusters with the
labels (1 = the clusters are the classes; ~0 = unrelated).

Example:
    >>> kmeans_scores(test.features, test.labels)
    {'nmi': 0.61, 'ari': 0.52}
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from torch import Tensor


def clustering_scores(clusters, labels) -> dict[str, float]:
    """NMI and ARI of an assignment ``clusters`` against ``labels`` (array-likes)."""
    return {
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "ari": float(adjusted_rand_score(labels, clusters)),
    }


def kmeans_clusters(features: Tensor, k: int, seed: int = 0) -> np.ndarray:
    """Cluster ids ``[N]`` of k-means (k clusters) on the L2-normalised ``features``."""
    if k < 2 or len(features) < k:
        raise ValueError(f"k-means needs at least two classes (k >= 2) and k images, got k={k}")
    points = F.normalize(features.float(), dim=1).cpu().numpy()
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(points)


def kmeans_scores(features: Tensor, labels: Tensor, seed: int = 0) -> dict[str, float]:
    """k-means with one cluster per class, then :func:`clustering_scores`."""
    k = len(set(labels.tolist()))
    return clustering_scores(kmeans_clusters(features, k, seed), labels.numpy())
