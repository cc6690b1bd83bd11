"""A complete custom metric in one file: nearest-class-mean accuracy of the frozen features.

Copy this file into ``cl_ssl/evaluation/`` (e.g. ``cl_ssl/evaluation/ncm.py``) and nothing
else: every ``clssl bench`` then measures it after every experience, and it shows in

- ``metrics.csv``: rows ``all_ncm`` and ``exp_ncm`` (its R matrices, per protocol);
- the figures: forgetting, BWT, FWT with the sign of ``direction`` (TensorBoard tags
  ``All_NCM_Forgetting``, ... next to ``All_NCM_Stream``);
- the summary table: ``final all-classes NCM accuracy`` and its forgetting;
- ``clssl list --metrics``.

Or run it from here: ``python examples/custom_metric.py`` registers it and prints the
summary of a short digits-periods run.

Nearest class mean (iCaRL's nearest-mean-of-exemplars, Rebuffi et al., CVPR 2017): with
m_c the mean of the L2-normalised training features of class c, an image x is assigned
argmax_c cos(f(x), m_c). No fitting and no hyper-parameter, so it moves only when the
representation does.

A metric is a function registered with ``@register_metric(name, direction, protocols,
kind)``; ``kind`` says what it receives (:mod:`cl_ssl.evaluation.metric_registry`):
``predictions`` gets the training features (bank) and the features to label, and is scored
by accuracy on every test split and on their union.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cl_ssl.evaluation.features import FeatureSet
from cl_ssl.evaluation.metric_registry import register_metric


@register_metric("NCM", "higher", ("all", "experience"), "predictions", title="NCM accuracy")
def nearest_class_mean(train: FeatureSet, features: Tensor, config) -> Tensor:
    """Nearest-class-mean top-1 accuracy (cosine to each class's mean training feature)."""
    classes = train.labels.unique()
    bank = F.normalize(train.features, dim=1)
    means = torch.stack([bank[train.labels == c].mean(0) for c in classes])
    scores = F.normalize(features, dim=1) @ F.normalize(means, dim=1).T
    return classes[scores.argmax(dim=1)]


if __name__ == "__main__":
    from cl_ssl.bench import run_bench
    from cl_ssl.config import BenchConfig, TrainConfig

    bench = run_bench(
        BenchConfig(
            stream="digits-periods",
            strategies="naive,replay",
            train=TrainConfig(epochs=5, batch_size=128),
            run_name="custom-metric-example",
        )
    )
    print(bench.summary(numeric=False).to_markdown(index=False))
