"""Linear probe: logistic regression on frozen, standardised features.

Deterministic (L-BFGS, no shuffling) and bounded in time by ``max_iter``; the features are
standardised with the training split's statistics (mean, population std; a constant
feature keeps scale 1). Accuracy is top-1 on the test split. Two solvers of one problem,
scikit-learn's multinomial logistic regression with an L2 penalty on the weights (not the
intercepts), for n images and C classes:

    min_{W, b}  1/n sum_i CE(softmax(W x_i + b), y_i) + 1/(2 c n) ||W||^2

(two classes: the binomial loss with one weight vector, as scikit-learn fits it):

- ``sklearn``: :func:`fit_linear_probe`, scipy's L-BFGS-B in float64 on the CPU (the
  published figures' probe);
- ``torch``: :func:`fit_torch_probe`, full-batch :class:`torch.optim.LBFGS` in float32 on
  the features' device, so features measured on a GPU never leave it.

Example:
    >>> linear_probe_top1(train.features, train.labels, test.features, test.labels)
    0.97
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor


def resolve_probe_backend(backend: str, device: torch.device | str | None) -> str:
    """``sklearn`` or ``torch``: ``auto`` is torch on a CUDA device, scikit-learn elsewhere.

    On the CPU scikit-learn stays the default: the published CPU figures were measured with
    it, and the torch probe is not faster there (docs/performance.md, "Evaluation").
    """
    if backend != "auto":
        return backend
    return "torch" if device is not None and torch.device(device).type == "cuda" else "sklearn"


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


@dataclass(frozen=True)
class TorchProbe:
    """A fitted probe of :func:`fit_torch_probe`: standardisation, weights, class labels."""

    mean: Tensor
    scale: Tensor
    weight: Tensor
    bias: Tensor
    classes: Tensor

    def logits(self, features: Tensor) -> Tensor:
        """Class scores ``[M, C]`` of raw ``features`` ``[M, F]``."""
        return _logits((features.to(self.mean) - self.mean) / self.scale, self.weight, self.bias)

    def predict(self, features: Tensor) -> Tensor:
        """Predicted labels ``[M]``, on the probe's device (ties: the smaller label)."""
        return self.classes[self.logits(features).argmax(dim=1)]


def _logits(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``x W + b``; one weight column (two classes) scores ``[0, x w + b]``: binomial."""
    z = x @ weight + bias
    return F.pad(z, (1, 0)) if weight.shape[1] == 1 else z


def probe_objective(probe: TorchProbe, features: Tensor, labels: Tensor, c: float) -> Tensor:
    """The module's objective of ``probe`` on its training ``features``, ``labels``."""
    targets = torch.searchsorted(probe.classes, labels.to(probe.classes.device))
    data = F.cross_entropy(probe.logits(features), targets)
    return data + probe.weight.pow(2).sum() / (2 * c * len(labels))


def fit_torch_probe(
    train_features: Tensor, train_labels: Tensor, max_iter: int = 500, c: float = 1.0
) -> TorchProbe:
    """Scikit-learn's probe problem solved by full-batch L-BFGS in float32 on the device.

    Starts from zero weights, so it is deterministic without a seed. Stops as scikit-learn
    does: after ``max_iter`` L-BFGS iterations, or when the largest gradient entry falls
    under 1e-4 (its ``tol``); scipy's history (10 pairs) and evaluation cap (15,000).
    """
    classes, targets = torch.unique(train_labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError("a linear probe needs at least two classes in its training split")
    x = train_features.float()
    mean = x.mean(dim=0)
    scale = x.std(dim=0, correction=0)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    x = (x - mean) / scale
    targets = targets.to(x.device)
    columns = 1 if len(classes) == 2 else len(classes)
    weight = torch.zeros(x.shape[1], columns, device=x.device, requires_grad=True)
    bias = torch.zeros(columns, device=x.device, requires_grad=True)
    penalty = 1.0 / (2 * c * len(x))
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        max_iter=max_iter,
        max_eval=15_000,
        tolerance_grad=1e-4,
        tolerance_change=1e-10,
        history_size=10,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(_logits(x, weight, bias), targets) + penalty * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return TorchProbe(mean, scale, weight.detach(), bias.detach(), classes.to(x.device))
