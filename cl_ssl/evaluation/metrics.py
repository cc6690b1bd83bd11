"""Avalanche metrics: representation quality per experience, and the continual figures.

Both are :class:`~avalanche.evaluation.PluginMetric` s, so their values reach every Avalanche
logger (TensorBoard, CSV, text) under Avalanche-style names, identical across strategies:

- :class:`RepresentationMetrics`, after each evaluated experience j: ``kNN20_Exp``,
  ``kNN200_Exp``, ``Linear_Exp``, ``NMI_Exp``, ``ARI_Exp``
  (``<name>/eval_phase/test_stream/Task000/Exp00j``). Features are extracted once per
  (model, experience), from the test split and the training split (the kNN memory bank and
  the probe's training set); labels are read for evaluation only. Experiences without labels
  get no value at all, never a made-up accuracy.
- :class:`ContinualFigures`, after each whole evaluation pass: for every per-experience metric
  of the pass (the SSL loss included), the figures of :mod:`cl_ssl.evaluation.continual` over
  the experiences seen so far: ``<name>_Avg`` (seen average), ``_Forgetting``, ``_BWT``,
  ``_FWT``, ``_ForgettingPct``.

The x axis of both is the number of experiences trained (0 = the untrained model), so
curves of strategies with different step counts (``joint``) line up.

Example:
    >>> evaluator = EvaluationPlugin(
    ...     loss_metrics(experience=True),
    ...     RepresentationMetrics(stream.experiences, augment, EvalConfig()),
    ...     ContinualFigures(), loggers=[TensorboardLogger("runs/x")])
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import numpy as np
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from cl_ssl.augment import TwoViewAugment
from cl_ssl.config import EvalConfig
from cl_ssl.evaluation import continual
from cl_ssl.evaluation.clustering import kmeans_scores
from cl_ssl.evaluation.features import FeatureSet, extract_features
from cl_ssl.evaluation.knn import knn_top1
from cl_ssl.evaluation.linear_probe import linear_probe_top1
from cl_ssl.streams import ExperienceData, cap_images

EXPERIENCE_TAG = re.compile(
    r"^(?P<name>\w+?)_Exp/eval_phase/test_stream/(?:Task\d+/)?Exp(?P<j>\d+)$"
)
FIGURE_SUFFIXES = {
    "Avg": "seen_average",
    "Forgetting": "forgetting",
    "BWT": "bwt",
    "FWT": "fwt",
    "ForgettingPct": "forgetting_pct",
}


def tidy_metric_name(tag_name: str) -> str:
    """Avalanche metric name -> tidy name: ``Loss`` -> ``ssl_loss``, ``kNN20`` -> ``knn20``."""
    return {"Loss": "ssl_loss"}.get(tag_name, tag_name.lower())


def representation_scores(train: FeatureSet, test: FeatureSet, config: EvalConfig) -> dict:
    """Every enabled representation metric for one experience (missing when undefined)."""
    scores: dict[str, float] = {}
    if not (train.is_labeled and test.is_labeled) or not len(test.labels):
        return scores
    for k in config.knn_k:
        scores[f"kNN{k}"] = knn_top1(
            train.features, train.labels, test.features, test.labels, k, config.knn_temperature
        )
    if config.linear_probe and len(set(train.labels.tolist())) > 1:
        scores["Linear"] = linear_probe_top1(
            train.features, train.labels, test.features, test.labels
        )
    if config.kmeans:
        classes = len(set(test.labels.tolist()))
        if classes > 1 and len(test.labels) >= classes:
            clustering = kmeans_scores(test.features, test.labels, config.seed)
            scores["NMI"], scores["ARI"] = clustering["nmi"], clustering["ari"]
    return scores


class RepresentationMetrics(PluginMetric[dict]):
    """kNN top-1, linear-probe top-1 and k-means NMI/ARI of the frozen backbone features.

    Args:
        experiences: The stream's per-experience datasets (train split = memory bank).
        augment: The run's augmentation; its deterministic ``eval_view`` prepares images.
        config: Which metrics, k values and caps.
    """

    def __init__(
        self, experiences: Sequence[ExperienceData], augment: TwoViewAugment, config: EvalConfig
    ) -> None:
        super().__init__()
        self.experiences = list(experiences)
        self.augment = augment
        self.config = config
        self.last: dict[str, float] = {}
        self.seconds = 0.0

    def reset(self) -> None:
        self.last = {}

    def result(self) -> dict:
        return dict(self.last)

    def after_eval_exp(self, strategy) -> list[MetricValue]:
        start = time.perf_counter()
        j = strategy.experience.current_experience
        data = self.experiences[j]
        if data.test is None or not data.train.is_labeled or not data.test.is_labeled:
            return []
        backbone, device = strategy.model.backbone, strategy.device
        train = cap_images(data.train, self.config.max_train_images, self.config.seed)
        batch = strategy.eval_mb_size
        scores = representation_scores(
            extract_features(backbone, self.augment, train, batch, device),
            extract_features(backbone, self.augment, data.test, batch, device),
            self.config,
        )
        self.last = scores
        self.seconds += time.perf_counter() - start
        x = strategy.clock.train_exp_counter
        tail = f"eval_phase/test_stream/Task000/Exp{j:03d}"
        return [MetricValue(self, f"{name}_Exp/{tail}", v, x) for name, v in scores.items()]

    def __str__(self) -> str:
        return "RepresentationMetrics"


class ContinualFigures(PluginMetric[dict]):
    """Forgetting, BWT, FWT and the seen average of every per-experience metric, per pass.

    Rows are keyed by the number of experiences trained when the pass ran (pass before any
    training = the FWT baseline). Reads the pass's values back from the evaluator.
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[int, dict[int, float]]] = {}
        self.last: dict[str, float] = {}

    def reset(self) -> None:
        self.last = {}

    def result(self) -> dict:
        return dict(self.last)

    def after_eval(self, strategy) -> list[MetricValue]:
        trained = strategy.clock.train_exp_counter
        for tag, value in strategy.evaluator.get_last_metrics().items():
            match = EXPERIENCE_TAG.match(tag)
            if match and isinstance(value, (int, float)):
                by_row = self.rows.setdefault(match["name"], {})
                by_row.setdefault(trained, {})[int(match["j"])] = float(value)
        values = []
        for name in self.rows:
            figures = self.figures(name, trained)
            self.last.update({f"{name}_{k}": v for k, v in figures.items()})
            for suffix, key in FIGURE_SUFFIXES.items():
                if key in figures and np.isfinite(figures[key]):
                    tag = f"{name}_{suffix}/eval_phase/test_stream"
                    values.append(MetricValue(self, tag, figures[key], trained))
        return values

    def figures(self, name: str, trained: int) -> dict[str, float]:
        """Figures of ``name`` over the first ``trained`` experiences (rows 1..trained)."""
        by_row = self.rows.get(name, {})
        if trained < 1 or trained not in by_row:
            return {}
        R = np.full((trained, trained), np.nan)
        for i in range(trained):
            for j, value in by_row.get(i + 1, {}).items():
                if j < trained:
                    R[i, j] = value
        baseline = by_row.get(0)
        base = None
        if baseline is not None:
            base = np.array([baseline.get(j, np.nan) for j in range(trained)])
        figures = continual.figures(R, base, tidy_metric_name(name))
        figures["seen_average"] = continual.seen_average(R)[-1]
        return figures

    def __str__(self) -> str:
        return "ContinualFigures"
