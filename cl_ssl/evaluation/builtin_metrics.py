"""The built-in metrics, declared once each (:mod:`cl_ssl.evaluation.metric_registry`).

The maths lives in :mod:`~cl_ssl.evaluation.knn`, :mod:`~cl_ssl.evaluation.linear_probe`,
:mod:`~cl_ssl.evaluation.clustering` and :mod:`~cl_ssl.evaluation.health`; this file says
what each is called, which way is better, and under which protocols it is measured. The
order of registration is the order of the rows of ``metrics.csv``.

The summary table's curated columns (:mod:`cl_ssl.reporting.summary`) already show the
built-ins they report, so the built-ins set ``summary=False``; a new metric gets its own
``final <title>`` column by default.
"""

from __future__ import annotations

import math

import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from torch import Tensor

from cl_ssl.evaluation.features import FeatureSet
from cl_ssl.evaluation.health import dimension_std, effective_rank, uniformity
from cl_ssl.evaluation.knn import knn_predict
from cl_ssl.evaluation.linear_probe import fit_linear_probe, fit_torch_probe, resolve_probe_backend
from cl_ssl.evaluation.metric_registry import register_metric


@register_metric("Loss", "lower", kind="loss", title="SSL loss", summary=False, tidy="ssl_loss")
def ssl_loss(*_: object) -> float:
    """The SSL loss on each test split (measured by the template's own loss metric)."""
    raise NotImplementedError("the SSL loss is measured by cl_ssl.evaluation.loss")


@register_metric(
    "kNN",
    "higher",
    kind="predictions",
    title="kNN",
    summary=False,
    enabled=lambda config: bool(config.knn_k),
)
def knn(train: FeatureSet, features: Tensor, config) -> dict[str, Tensor]:
    """Weighted kNN top-1 accuracy, one row per k of --knn-k (kNN20, kNN200)."""
    return {
        str(k): knn_predict(train.features, train.labels, features, k, config.knn_temperature)
        for k in config.knn_k
    }


@register_metric(
    "Linear",
    "higher",
    kind="predictions",
    title="linear probe",
    summary=False,
    enabled=lambda config: config.linear_probe,
)
def linear(train: FeatureSet, features: Tensor, config) -> Tensor | None:
    """Linear-probe top-1 accuracy (logistic regression on standardised features).

    Solved by ``config.probe_backend``, ``auto`` read from where the features are.
    """
    if len(set(train.labels.tolist())) < 2:
        return None  # one class: nothing to separate
    if resolve_probe_backend(config.probe_backend, train.features.device) == "torch":
        return fit_torch_probe(train.features, train.labels).predict(features)
    probe = fit_linear_probe(train.features.cpu(), train.labels)
    return torch.as_tensor(probe.predict(features.cpu().numpy()))


@register_metric(
    "NMI",
    "higher",
    kind="clusters",
    title="k-means NMI",
    summary=False,
    enabled=lambda config: config.kmeans,
)
def nmi(clusters, labels) -> float:
    """k-means normalised mutual information with the classes (1 = clusters are classes)."""
    return float(normalized_mutual_info_score(labels, clusters))


@register_metric(
    "ARI",
    "higher",
    kind="clusters",
    title="k-means ARI",
    summary=False,
    enabled=lambda config: config.kmeans,
)
def ari(clusters, labels) -> float:
    """k-means adjusted Rand index with the classes (~0 = unrelated)."""
    return float(adjusted_rand_score(labels, clusters))


@register_metric("StdRatio", "higher", ("all",), title="std ratio", summary=False)
def std_ratio(features: Tensor) -> float:
    """Per-dimension std of the normalised features x sqrt(D): ~1 spread, 0 collapsed."""
    return dimension_std(features) * math.sqrt(features.shape[1])


@register_metric("EffRank", "higher", ("all",), title="eff. rank", summary=False)
def eff_rank(features: Tensor) -> float:
    """Effective rank of the features (RankMe): how many directions carry energy."""
    return effective_rank(features)


@register_metric("Uniformity", "lower", ("all",), title="uniformity", summary=False)
def uniformity_metric(features: Tensor) -> float:
    """Wang & Isola's uniformity log E exp(-2 |x - y|^2): lower is spread more evenly."""
    return uniformity(features)
