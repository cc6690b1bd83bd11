"""Avalanche metrics: representation quality under two protocols, and the continual figures.

Both are :class:`~avalanche.evaluation.PluginMetric` s, so their values reach every Avalanche
logger (TensorBoard, CSV, text) under Avalanche-style names, identical across strategies.

:class:`RepresentationMetrics` measures the frozen backbone's features after every training
experience i under two protocols, each named in every tag, CSV row and table:

- **all-classes** (``All_*``, tidy ``all_knn20``, ``all_linear``, ``all_nmi``, ...; the
  protocol continual-SSL papers report: CaSSLe, PFR, PNR, solo-learn's offline linear eval):
  one kNN memory bank and one linear probe fitted on the training images of *every*
  experience of the stream (labels made unique per source dataset), evaluated on every
  test split. R[i][j] is the accuracy on experience j's test split and the headline is the
  accuracy on the *union* of all test splits (``All_*_Stream`` tags, tidy rows with
  ``eval_exp = UNION``). k-means runs once on the union of the test splits, with one
  cluster per class; R[i][j] is its NMI/ARI restricted to experience j. The embedding
  health of the test features (``All_StdRatio``, ``All_EffRank``, ``All_Uniformity``:
  collapse shows as a std ratio far below 1 and a low effective rank) comes with them.
- **per-experience** (``Exp_*``, tidy ``exp_knn20``, ``exp_linear``, ...): bank, probe and
  k-means use experience j's own images and classes only. Kept for comparison; with two
  classes per experience it sits near its ceiling for every strategy and cannot rank them.

Which metrics run, and under which protocol, is declared once per metric in the registry
(:mod:`cl_ssl.evaluation.metric_registry`; built-ins in :mod:`~cl_ssl.evaluation.builtin_metrics`).
Features are extracted once per (model, experience), from the test split and from a seeded
subset of ``EvalConfig.max_train_images`` training images, and shared by both protocols.
Labels are read for evaluation only. Experiences without labels get no value at all.

:class:`ContinualFigures`, after each whole evaluation pass, computes for every
per-experience metric of the pass (the SSL loss included) the figures of
:mod:`cl_ssl.evaluation.continual` over the experiences seen so far: ``<name>_Avg`` (seen
average), ``_Forgetting``, ``_BWT``, ``_FWT``, ``_ForgettingPct``, ``_Plasticity``.

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
import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from cl_ssl.augment import TwoViewAugment
from cl_ssl.config import EvalConfig
from cl_ssl.evaluation import continual
from cl_ssl.evaluation.clustering import kmeans_clusters
from cl_ssl.evaluation.features import FeatureSet, extract_features
from cl_ssl.evaluation.linear_probe import resolve_probe_backend
from cl_ssl.evaluation.metric_registry import active, registered
from cl_ssl.streams import ExperienceData, cap_images

EXPERIENCE_TAG = re.compile(
    r"^(?P<name>\w+?)_Exp/eval_phase/test_stream/(?:Task\d+/)?Exp(?P<j>\d+)$"
)
STREAM_TAG = re.compile(r"^(?P<name>All_\w+?)_Stream/eval_phase/test_stream$")
UNION = -1
"""``eval_exp`` of the tidy rows measured on the union of every experience's test split."""

FIGURE_SUFFIXES = {
    "Avg": "seen_average",
    "Forgetting": "forgetting",
    "BWT": "bwt",
    "FWT": "fwt",
    "ForgettingPct": "forgetting_pct",
    "Plasticity": "plasticity",
}


def tidy_metric_name(tag_name: str) -> str:
    """Avalanche name -> tidy name: ``Loss`` -> ``ssl_loss``, ``All_kNN20`` -> ``all_knn20``."""
    losses = {spec.name: spec.tidy for spec in registered() if spec.kind == "loss"}
    return losses.get(tag_name, tag_name.lower())


def representation_scores(
    train: FeatureSet,
    tests: Sequence[FeatureSet],
    config: EvalConfig,
    protocol: str = "all",
) -> list[dict[str, float]]:
    """Every registered metric measured under ``protocol``, on each of ``tests`` and their union.

    ``predictions`` metrics are fitted on ``train`` (bank, probe) and scored by accuracy;
    ``clusters`` metrics read one k-means clustering of the union of ``tests`` (one cluster
    per class), so their per-split values are parts of one clustering. Returns one dict per
    test split plus a last one for their union; a metric that is undefined (one class, no
    labels) is absent. The label-free ``features`` metrics are :func:`feature_scores`.

    Example:
        >>> per_split = representation_scores(train, [test0, test1], EvalConfig())
        >>> per_split[-1]["Linear"]   # accuracy on test0 + test1
    """
    empty: list[dict[str, float]] = [{} for _ in range(len(tests) + 1)]
    tests = list(tests)
    if not train.is_labeled or not all(t.is_labeled for t in tests):
        return empty
    union = FeatureSet(torch.cat([t.features for t in tests]), torch.cat([t.labels for t in tests]))
    bounds = np.cumsum([0] + [len(t.labels) for t in tests])
    parts = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    parts.append(slice(0, int(bounds[-1])))
    scores = empty
    truth = union.labels.cpu()

    def record(name: str, predicted: torch.Tensor) -> None:
        predicted = predicted.cpu()  # M labels: the one copy off the device
        for part, row in zip(parts, scores, strict=True):
            if part.stop > part.start:
                row[name] = float((predicted[part] == truth[part]).float().mean())

    for spec in active(config, "predictions", protocol):
        predicted = spec.fn(train, union.features, config)
        family = predicted if isinstance(predicted, dict) else {"": predicted}
        for suffix, labels in family.items():
            if labels is not None:
                record(f"{spec.name}{suffix}", labels)
    clustered = list(active(config, "clusters", protocol))
    classes = len(set(truth.tolist()))
    if clustered and classes > 1 and len(truth) >= classes:
        clusters = kmeans_clusters(union.features, classes, config.seed)
        for part, row in zip(parts, scores, strict=True):
            if len(set(truth[part].tolist())) > 1:
                for spec in clustered:
                    row[spec.name] = spec.fn(clusters[part], truth[part].numpy())
    return scores


HEALTH_ROWS = 2048  # uniformity's pairwise distances grow as N^2: a seeded subset


def feature_scores(
    tests: Sequence[FeatureSet], seed: int, config: EvalConfig | None = None, protocol: str = "all"
) -> list[dict[str, float]]:
    """The registered ``features`` metrics of each test split's features and of their union.

    The built-ins are the embedding health: ``StdRatio`` (per-dimension std of normalised
    features x sqrt(D); collapse far below 1), ``EffRank`` (RankMe) and ``Uniformity`` (Wang
    & Isola), from :mod:`cl_ssl.evaluation.health`. Each runs on at most :data:`HEALTH_ROWS`
    rows of each split (seeded); splits of fewer than two rows get none.
    """
    specs = list(active(config or EvalConfig(), "features", protocol))
    generator = torch.Generator().manual_seed(seed)
    union = torch.cat([t.features for t in tests])
    rows = []
    for features in [*(t.features for t in tests), union]:
        if len(features) < 2 or not specs:
            rows.append({})
            continue
        if len(features) > HEALTH_ROWS:
            features = features[torch.randperm(len(features), generator=generator)[:HEALTH_ROWS]]
        rows.append({spec.name: float(spec.fn(features)) for spec in specs})
    return rows


class RepresentationMetrics(PluginMetric[dict]):
    """kNN, linear-probe and k-means scores of frozen features, all-classes and per experience.

    Args:
        experiences: The stream's per-experience datasets (their train splits feed the
            banks and probes, their test splits are scored).
        augment: The run's augmentation; its deterministic ``eval_view`` prepares images.
        config: Which metrics, k values and caps; ``config.protocols`` picks the protocols.
    """

    def __init__(
        self, experiences: Sequence[ExperienceData], augment: TwoViewAugment, config: EvalConfig
    ) -> None:
        super().__init__()
        self.experiences = list(experiences)
        self.augment = augment
        self.config = config
        self.classes = global_classes(self.experiences)
        self.last: dict[str, float] = {}
        self.seconds = 0.0
        self._cache: dict[int, tuple[FeatureSet, FeatureSet]] = {}

    def reset(self) -> None:
        self.last = {}

    def result(self) -> dict:
        return dict(self.last)

    def before_eval(self, strategy) -> None:
        self._cache = {}  # new model weights: features of the previous pass are stale

    def _labeled(self, j: int) -> bool:
        data = self.experiences[j]
        return data.test is not None and data.train.is_labeled and data.test.is_labeled

    def _features(self, strategy, j: int) -> tuple[FeatureSet, FeatureSet]:
        if j not in self._cache:
            data = self.experiences[j]
            train = cap_images(data.train, self.config.max_train_images, self.config.seed)
            backbone, device = strategy.model.backbone, strategy.device
            batch = strategy.eval_mb_size
            # The torch probe and kNN read features where the model made them (no copy).
            torch_probe = resolve_probe_backend(self.config.probe_backend, device) == "torch"
            keep = device if torch_probe else "cpu"
            pair = []
            for split in (train, data.test):
                found = extract_features(backbone, self.augment, split, batch, device, keep=keep)
                labels = self._global(j, found.labels.cpu()).to(keep)
                pair.append(FeatureSet(found.features, labels))
            self._cache[j] = (pair[0], pair[1])
        return self._cache[j]

    def _global(self, j: int, labels: torch.Tensor) -> torch.Tensor:
        domain = self.experiences[j].domain
        return torch.tensor([self.classes[(domain, int(y))] for y in labels.tolist()])

    def after_eval_exp(self, strategy) -> list[MetricValue]:
        j = strategy.experience.current_experience
        if "experience" not in self.config.protocols or not self._labeled(j):
            return []
        start = time.perf_counter()
        train, test = self._features(strategy, j)
        scores = representation_scores(train, [test], self.config, "experience")[0]
        scores.update(feature_scores([test], self.config.seed, self.config, "experience")[0])
        self.last.update({f"Exp_{name}": v for name, v in scores.items()})
        self.seconds += time.perf_counter() - start
        x = strategy.clock.train_exp_counter
        tail = f"eval_phase/test_stream/Task000/Exp{j:03d}"
        return [MetricValue(self, f"Exp_{name}_Exp/{tail}", v, x) for name, v in scores.items()]

    def after_eval(self, strategy) -> list[MetricValue]:
        labeled = [j for j in range(len(self.experiences)) if self._labeled(j)]
        if "all" not in self.config.protocols or not labeled:
            return []
        start = time.perf_counter()
        features = [self._features(strategy, j) for j in labeled]
        train = FeatureSet(
            torch.cat([f[0].features for f in features]), torch.cat([f[0].labels for f in features])
        )
        tests = [f[1] for f in features]
        scores = representation_scores(train, tests, self.config)
        found = feature_scores(tests, self.config.seed, self.config, "all")
        for row, features_row in zip(scores, found, strict=True):
            row.update(features_row)
        self.seconds += time.perf_counter() - start
        x = strategy.clock.train_exp_counter
        values = []
        for j, row in zip(labeled, scores[:-1], strict=True):
            tail = f"eval_phase/test_stream/Task000/Exp{j:03d}"
            values += [MetricValue(self, f"All_{n}_Exp/{tail}", v, x) for n, v in row.items()]
        for name, value in scores[-1].items():
            self.last[f"All_{name}"] = value
            values.append(MetricValue(self, f"All_{name}_Stream/eval_phase/test_stream", value, x))
        return values

    def __str__(self) -> str:
        return "RepresentationMetrics"


def global_classes(experiences: Sequence[ExperienceData]) -> dict[tuple[str, int], int]:
    """``(domain, label) -> class id``, unique across the source datasets of a stream."""
    pairs = set()
    for data in experiences:
        for split in (data.train, data.test):
            if split is not None and split.is_labeled:
                pairs.update((data.domain, int(y)) for y in split.labels.unique().tolist())
    return {pair: i for i, pair in enumerate(sorted(pairs))}


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

    def state_dict(self) -> dict:
        """Every pass's per-experience values so far (checkpoints carry them)."""
        return {"rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows = {
            name: {int(i): {int(j): float(v) for j, v in row.items()} for i, row in rows.items()}
            for name, rows in state["rows"].items()
        }

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
