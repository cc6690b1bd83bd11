"""The metric registry: one declaration makes a metric appear everywhere a result is shown.

A metric registers itself with ``@register_metric(name, direction, protocols, kind)`` on the
function that computes it; from that one declaration it is measured after every experience
(:class:`~cl_ssl.evaluation.metrics.RepresentationMetrics`), lands in the R matrices of
``metrics.csv`` (tidy name ``all_<name>`` / ``exp_<name>``, lower case), gets its
forgetting, BWT and FWT with the sign of its ``direction``
(:mod:`cl_ssl.evaluation.continual`), a TensorBoard chart, a column of the summary table
(:mod:`cl_ssl.reporting.summary`) and a line in ``clssl list --metrics``.

What the function receives depends on its ``kind``:

- ``features``: ``fn(features [N, D]) -> float`` on each test split's frozen features and on
  their union (at most :data:`~cl_ssl.evaluation.metrics.HEALTH_ROWS` seeded rows);
  label-free (embedding health);
- ``predictions``: ``fn(train: FeatureSet, features [N, D], config) -> labels [N]`` (or a
  dict ``suffix -> labels`` for a family such as kNN-k); the score is the accuracy per split
  and on the union;
- ``clusters``: ``fn(clusters, labels) -> float`` of one k-means clustering of the union of
  the test splits (one cluster per class), per split;
- ``loss``: measured by the template itself (the SSL loss); declared for its direction.

``protocols`` says under which evaluation protocols (``--eval-protocols``) it is measured:
``all`` (bank/probe over every experience, scored per split and on the union) and/or
``experience`` (each experience's own images). ``enabled`` reads the :class:`EvalConfig`
switches of the built-in metrics (``--knn-k``, ``--no-linear-probe``, ``--no-kmeans``); a new
metric is on by default, with no flag to add.

Modules of :mod:`cl_ssl.evaluation` that register metrics are found by the registry (drop a
file there), and installed packages add theirs through the ``cl_ssl.metrics`` entry points,
each named as its metric and pointing at the module that declares it
(``NCM = "my_pkg.ncm"``).

Example:
    >>> @register_metric("MeanNorm", direction="higher", protocols=("all",))
    ... def mean_norm(features: Tensor) -> float:
    ...     '''Mean L2 norm of the frozen features.'''
    ...     return float(features.norm(dim=1).mean())
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from cl_ssl.registry import Registry

Direction = Literal["higher", "lower"]
Kind = Literal["features", "predictions", "clusters", "loss"]
KINDS = ("features", "predictions", "clusters", "loss")
PROTOCOLS = ("all", "experience")
PREFIXES = {"all": "all_", "experience": "exp_"}  # tidy names' protocol prefixes
_order = itertools.count()


def _always(config: Any) -> bool:
    return True


@dataclass(frozen=True)
class MetricSpec:
    """One registered metric.

    Attributes:
        name: Avalanche name part (``All_<name>_Exp/...`` tags); tidy name ``name.lower()``.
        fn: The function computing it (signature by ``kind``, see the module docstring).
        direction: ``higher`` or ``lower`` is better: the sign of its forgetting.
        protocols: Evaluation protocols it is measured under (``all``, ``experience``).
        kind: What ``fn`` receives: ``features``, ``predictions``, ``clusters`` or ``loss``.
        title: Human name for plots, the summary table and ``clssl list``.
        summary: Whether the summary table gets a ``final <title>`` column of it.
        enabled: Whether a run's :class:`EvalConfig` measures it (built-ins' switches).
        tidy: Tidy name without the protocol prefix (``ssl_loss`` for the loss).
        order: Registration order (the order of rows and columns).
    """

    name: str
    fn: Callable
    direction: Direction
    protocols: tuple[str, ...]
    kind: Kind
    title: str
    summary: bool
    enabled: Callable[[Any], bool]
    tidy: str
    order: int

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"

    def tidy_names(self) -> list[str]:
        """The tidy names of its ``metrics.csv`` rows (the loss has no protocol prefix)."""
        if self.kind == "loss":
            return [self.tidy]
        return [PREFIXES[p] + self.tidy for p in self.protocols]


metrics: Registry = Registry("metric", "cl_ssl.evaluation", "cl_ssl.metrics")


def register_metric(
    name: str,
    direction: Direction,
    protocols: tuple[str, ...] = PROTOCOLS,
    kind: Kind = "features",
    *,
    title: str | None = None,
    summary: bool = True,
    enabled: Callable[[Any], bool] = _always,
    tidy: str | None = None,
) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn`` as the metric ``name`` (arguments: :class:`MetricSpec`).

    Raises:
        ValueError: A bad direction, kind, protocol or name (each message names the fix).
    """
    if direction not in ("higher", "lower"):
        raise ValueError(
            f"metric '{name}': direction must be 'higher' or 'lower', got {direction!r}"
        )
    if kind not in KINDS:
        raise ValueError(f"metric '{name}': kind must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown or not protocols:
        raise ValueError(
            f"metric '{name}': protocols must be among {', '.join(PROTOCOLS)}, got {protocols}"
        )
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name) and kind != "loss":
        raise ValueError(f"metric '{name}': use letters and digits only (it names tags and files)")

    def decorator(fn: Callable) -> Callable:
        spec = MetricSpec(
            name,
            fn,
            direction,
            tuple(protocols),
            kind,
            title or name,
            summary,
            enabled,
            tidy or name.lower(),
            next(_order),
        )
        metrics.add(name, spec)
        return fn

    return decorator


def registered() -> list[MetricSpec]:
    """Every registered metric (discovered and built-in), in registration order."""
    specs = []
    for name, spec in metrics.items():
        if not isinstance(spec, MetricSpec):  # an entry point naming the function itself
            raise ValueError(
                f"metric '{name}' is not declared with @register_metric: point its entry "
                'point at the module that declares it (NAME = "my_pkg.my_metric")'
            )
        specs.append(spec)
    return sorted(specs, key=lambda spec: spec.order)


def active(config: Any, kind: str, protocol: str) -> Iterator[MetricSpec]:
    """The metrics of ``kind`` measured under ``protocol`` by a run with ``config``."""
    for spec in registered():
        if spec.kind == kind and protocol in spec.protocols and spec.enabled(config):
            yield spec


def spec_of(tidy_metric: str) -> MetricSpec | None:
    """The spec behind a tidy name: ``all_knn20`` -> kNN, ``ssl_loss`` -> the loss; or None."""
    for spec in registered():
        for full in spec.tidy_names():
            rest = tidy_metric[len(full) :] if tidy_metric.startswith(full) else None
            if rest is not None and (rest == "" or rest.isdigit()):  # kNN-k families
                return spec
    return None


def higher_is_better(tidy_metric: str) -> bool:
    """The metric's declared direction; unregistered names count as higher-is-better."""
    spec = spec_of(tidy_metric)
    return spec is None or spec.higher_is_better


def title_of(tidy_metric: str) -> str:
    """``all_knn20`` -> ``all-classes kNN20``: the protocol in words and the metric's title."""
    spec = spec_of(tidy_metric)
    if spec is None:
        return tidy_metric
    if spec.kind == "loss":
        return spec.title
    protocol = "all-classes" if tidy_metric.startswith("all_") else "per-experience"
    suffix = tidy_metric.rpartition("_")[2][len(spec.tidy) :]
    return f"{protocol} {spec.title}" + (f"-{suffix}" if suffix else "")


def metric_lines() -> list[str]:
    """``clssl list --metrics``: one line per metric, its direction, kind and protocols."""
    lines = ["metrics:"]
    for spec in registered():
        doc = (spec.fn.__doc__ or "").strip().splitlines()
        arrow = "higher is better" if spec.higher_is_better else "lower is better"
        family = "dict" in str(spec.fn.__annotations__.get("return", ""))
        star = "*" if family else ""  # a family of rows: kNN20, kNN200, ...
        rows = ", ".join(name + star for name in spec.tidy_names())
        where = "every evaluation" if spec.kind == "loss" else ", ".join(spec.protocols)
        lines.append(f"  {spec.name}: {doc[0] if doc else spec.title}")
        lines.append(f"      {arrow}; {spec.kind}; protocols: {where}; metrics.csv: {rows}")
    return lines
