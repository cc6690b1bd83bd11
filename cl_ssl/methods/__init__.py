"""SSL methods: one file each, registered by name (``@register_method``)."""

from __future__ import annotations

from collections.abc import Mapping

from cl_ssl.methods.base import SSLMethod


def build_method(name: str, options: Mapping[str, Mapping[str, str]] | None = None) -> SSLMethod:
    """The method ``name`` with its ``--method-opt`` options (checked, one-line errors).

    ``a+b`` mixes methods (:class:`~cl_ssl.methods.mixture.MixedMethod`): each takes its
    own options and a mixing weight ``a.weight`` (default 1.0).

    Example:
        >>> build_method("simclr", {"simclr": {"temperature": "0.2"}}).options.temperature
        0.2
        >>> build_method("simclr+vicreg", {"vicreg": {"weight": "0.5"}}).weights
        (1.0, 0.5)
    """
    from cl_ssl.options import convert, parse_options
    from cl_ssl.registry import methods

    options = options or {}
    names = mixture_names(name)
    if len(names) == 1:
        cls = methods.get(name)
        return cls(parse_options(cls.Options, options.get(name, {}), name))
    from cl_ssl.methods.mixture import MIX_WEIGHT_KEY, MixedMethod

    built, weights = [], []
    for part in names:
        cls = methods.get(part)
        own = dict(options.get(part, {}))
        text = own.pop(MIX_WEIGHT_KEY, "1.0")
        try:
            weights.append(convert(text, float))
        except ValueError as error:
            raise ValueError(f"option {part}.weight={text!r}: {error}") from None
        built.append(cls(parse_options(cls.Options, own, part)))
    return MixedMethod(names, built, weights)


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


__all__ = ["SSLMethod", "build_method", "mixture_names"]
