"""Which loss weights a bench exposes to ``clssl evolve``.

A strategy plugin declares the weights of its loss terms as a class attribute keyed by its
``--opt`` names, with the range searched (the default inside it); a third element ``"log"``
searches a range that spans decades log-uniformly (``low`` > 0; see
:class:`~cl_ssl.evolve.search.WeightSpace`)::

    class LwFSSLPlugin(SupervisedPlugin):
        Options = LwFSSLOptions
        loss_weights = {"lambda": (0.0, 2.0)}

    class EWCPlugin(AvalancheEWCPlugin):
        loss_weights = {"lambda": (1e3, 1e7, "log")}

The search space of ``--strategy lwf-ssl+pnr`` is then every declared weight of every plugin
of the run, named ``STRATEGY.KEY`` (``lwf-ssl.lambda``, ``pnr.weight``, ...). A mixture of
SSL objectives (``--method simclr+barlow-twins``) adds each method's mixing weight,
``METHOD.weight`` in [0, 1] (set with ``--method-opt``), and ``--weight NAME=LOW:HIGH``
(``NAME=LOW:HIGH:log`` for a log range) overrides a range or adds an option a plugin does
not declare.

Example:
    >>> weight_space("lwf-ssl+replay").ranges
    {'lwf-ssl.lambda': (0.0, 2.0)}
    >>> weight_space("lwf-ssl", {"lwf-ssl.lambda": (0.0, 1.0)}).ranges
    {'lwf-ssl.lambda': (0.0, 1.0)}
    >>> weight_space("lwf-ssl", method="simclr+vicreg").ranges
    {'lwf-ssl.lambda': (0.0, 2.0), 'simclr.weight': (0.0, 1.0), 'vicreg.weight': (0.0, 1.0)}
"""

from __future__ import annotations

from collections.abc import Mapping

from cl_ssl.evolve.search import LOG, Bounds, WeightSpace


def weight_space(
    spec: str,
    overrides: Mapping[str, Bounds] | None = None,
    method: str = "simclr",
) -> WeightSpace:
    """The weights of the one run ``spec`` (``a+b``) with ``method``, as declared or overridden."""
    from cl_ssl.methods import mixture_names
    from cl_ssl.methods.mixture import MIX_WEIGHT_KEY, MIX_WEIGHT_RANGE
    from cl_ssl.registry import strategies
    from cl_ssl.strategy import parse_spec

    runs = parse_spec(spec)
    if len(runs) != 1:
        raise ValueError(
            f"clssl evolve searches the weights of one run, got --strategy {spec!r}: pass one "
            "strategy or one composition (e.g. lwf-ssl+replay), not a comma-separated list"
        )
    (run,) = runs
    ranges: dict[str, Bounds] = {}
    for name in run:
        for key, bounds in getattr(strategies.get(name), "loss_weights", {}).items():
            ranges[f"{name}.{key}"] = tuple(bounds)  # type: ignore[assignment]
    mixed = mixture_names(method)
    if len(mixed) > 1:
        for name in mixed:
            ranges[f"{name}.{MIX_WEIGHT_KEY}"] = MIX_WEIGHT_RANGE
    owners = (*run, *mixed) if len(mixed) > 1 else tuple(run)
    for name, bounds in (overrides or {}).items():
        owner = name.rpartition(".")[0]
        if owner not in owners:
            raise ValueError(
                f"--weight {name}: {owner!r} is not in --strategy {spec} (or a mixed --method): "
                f"name a weight as STRATEGY.KEY or METHOD.weight of one of {', '.join(owners)}"
            )
        ranges[name] = bounds
    if not ranges:
        raise ValueError(
            f"--strategy {spec} has no loss weight to search: add a distillation or "
            "regularisation strategy (lwf-ssl, ewc, cassle, pfr, pnr), mix SSL objectives "
            "(--method simclr+barlow-twins) or name one with --weight STRATEGY.KEY=LOW:HIGH"
        )
    return WeightSpace(ranges)


def parse_weight_flags(flags: list[str]) -> dict[str, Bounds]:
    """``["lwf-ssl.lambda=0:3", "ewc.lambda=1e3:1e7:log"]`` -> name -> range.

    Example:
        >>> parse_weight_flags(["lwf-ssl.lambda=0:3", "ewc.lambda=1e3:1e7:log"])
        {'lwf-ssl.lambda': (0.0, 3.0), 'ewc.lambda': (1000.0, 10000000.0, 'log')}
    """
    parsed: dict[str, Bounds] = {}
    for flag in flags:
        name, sep, bounds = flag.partition("=")
        parts = bounds.split(":")
        try:
            if not (sep and "." in name and len(parts) in (2, 3)):
                raise ValueError
            if len(parts) == 3 and parts[2] != LOG:
                raise ValueError
            low, high = float(parts[0]), float(parts[1])
            parsed[name] = (low, high, LOG) if len(parts) == 3 else (low, high)
        except ValueError:
            raise ValueError(
                f"bad --weight '{flag}': write STRATEGY.KEY=LOW:HIGH or LOW:HIGH:log, e.g. "
                "lwf-ssl.lambda=0:3 or ewc.lambda=1e3:1e7:log"
            ) from None
    return parsed
