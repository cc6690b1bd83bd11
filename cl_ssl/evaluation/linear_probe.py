"""Linear probe: logistic regression on frozen, standardised features (scikit-learn).

Deterministic (L-BFGS, no shuffling) and bounded in time by ``max_iter``; the features are
standardised with the training split's statistics. Accuracy is top-1 on the test split.

Example:
    >>> linear_probe_top1(train.features, train.labels, test.features, test.labels)
    0.97
"""

from __future__ import annotations

import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor


def fit_linear_probe(
    train_features: Tensor, train_labels: Tensor, max_iter: int = 500, c: float = 1.0
) -> Pipeline:
    """A fitted scikit-learn pipeline (standardise, logistic regression) on the features."""
    if len(set(train_labels.tolist())) < 2:
        raise ValueError("a linear probe needs at least two classes in its training split")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    with warnings.catch_warnings():
        # Bounded time over exact convergence: the probe is a measurement, not a model.
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(train_features.numpy(), train_labels.numpy())
    return probe


def linear_probe_top1(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    max_iter: int = 500,
    c: float = 1.0,
) -> float:
    """Top-1 accuracy (0-1) of a logistic-regression probe fit on the training features."""
    probe = fit_linear_probe(train_features, train_labels, max_iter, c)
    return float(probe.score(test_features.numpy(), test_labels.numpy()))
