"""SSL methods: one file each, registered by name (``@register_method``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cl_ssl.methods.base import SSLMethod


def parse_method(
    name: str, options: Mapping[str, Mapping[str, str]] | None = None
) -> list[tuple[type[SSLMethod], Any, float]]:
    """Each method of ``name``: its class, parsed ``Options`` and mixing weight; builds nothing.

    Every ``--method-opt`` is checked here (one-line errors), so a bench refuses a bad one
    before any data is read. ``a+b`` mixes methods: each takes its own options and a mixing
    weight ``a.weight`` (default 1.0).
    """
    from cl_ssl.options import convert, parse_options
    from cl_ssl.registry import methods

    options = options or {}
    names = mixture_names(name)
    if len(names) == 1:
        cls = methods.get(name)
        return [(cls, parse_options(cls.Options, options.get(name, {}), name), 1.0)]
    from cl_ssl.methods.mixture import MIX_WEIGHT_KEY, check_mixture

    parts = []
    for part in names:
        cls = methods.get(part)
        own = dict(options.get(part, {}))
        text = own.pop(MIX_WEIGHT_KEY, "1.0")
        try:
            weight = convert(text, float)
        except ValueError as error:
            raise ValueError(f"option {part}.weight={text!r}: {error}") from None
        parts.append((cls, parse_options(cls.Options, own, part), weight))
    check_mixture(names, [cls for cls, _, _ in parts], [w for _, _, w in parts])
    return parts


def build_method(name: str, options: Mapping[str, Mapping[str, str]] | None = None) -> SSLMethod:
    """The method ``name`` with its ``--method-opt`` options (:func:`parse_method`).

    Example:
        >>> build_method("simclr", {"simclr": {"temperature": "0.2"}}).options.temperature
        0.2
        >>> build_method("simclr+vicreg", {"vicreg": {"weight": "0.5"}}).weights
        (1.0, 0.5)
    """
    parts = parse_method(name, options)
    if len(parts) == 1:
        cls, parsed, _ = parts[0]
        return cls(parsed)
    from cl_ssl.methods.mixture import MixedMethod

    built = [cls(parsed) for cls, parsed, _ in parts]
    return MixedMethod(mixture_names(name), built, [w for _, _, w in parts])


def mixture_names(name: str) -> tuple[str, ...]:
    """The methods of ``name``: ``"simclr+vicreg"`` -> ``("simclr", "vicreg")``.

    Empty or repeated parts are a one-line error.
    """
    names = tuple(part.strip() for part in name.split("+"))
    if not all(names) or len(set(names)) != len(names):
        raise ValueError(
            f"bad --method {name!r}: name one method or distinct methods joined by '+', "
            "e.g. simclr+barlow-twins"
        )
    return names


__all__ = ["SSLMethod", "build_method", "mixture_names", "parse_method"]
