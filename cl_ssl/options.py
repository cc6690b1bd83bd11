"""Typed option dataclasses from ``key=value`` strings (``--opt lwf-ssl.lambda=1.0``)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def field_key(name: str) -> str:
    """Command-line spelling of a field: ``lambda_`` -> ``lambda``, ``mem_size`` -> ``mem-size``."""
    return name.rstrip("_").replace("_", "-")


def parse_options(cls: type[T], raw: Mapping[str, str], owner: str) -> T:
    """Build dataclass ``cls`` from string values, converting each to its field's type.

    Keys may use ``-`` or ``_`` and may drop a trailing ``_`` (``lambda`` for ``lambda_``).
    Unknown keys and unconvertible values raise ``ValueError`` naming ``owner`` and the fix;
    a float must be finite (``inf`` or ``nan`` would only fail later, mid-training).
    """
    fields = {field_key(f.name): f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, text in raw.items():
        field = fields.get(field_key(key))
        if field is None:
            choices = ", ".join(fields) or "(none)"
            raise ValueError(f"unknown option '{key}' for {owner}; choose from: {choices}")
        try:
            values[field.name] = convert(text, hints[field.name])
        except (TypeError, ValueError) as error:
            raise ValueError(f"option {owner}.{key}={text!r}: {error}") from None
    return cls(**values)


def convert(text: str, annotation: Any) -> Any:
    """Convert ``text`` to ``annotation`` (bool, int, float, str, Literal, Optional, tuple).

    Floats must be finite.
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        choices = [a for a in args if a is not type(None)]
        errors = []
        for arg in choices:
            try:
                return convert(text, arg)
            except (TypeError, ValueError) as error:
                errors.append(error)
        if len(choices) == 1:  # ``float | None``: the float's own reason
            raise errors[0]
        raise ValueError(f"expected one of {args}")
    if origin is typing.Literal:
        if text not in [str(a) for a in args]:
            raise ValueError(f"expected one of: {', '.join(map(str, args))}")
        return next(a for a in args if str(a) == text)
    if origin is tuple:
        parts = [p for p in text.replace(";", ",").split(",") if p]
        return tuple(convert(p, args[0]) for p in parts)
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if annotation is float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value
    if annotation in (int, str):
        return annotation(text)
    raise TypeError(f"options of type {annotation} cannot be set from the command line")


def describe(cls: type) -> list[tuple[str, str, str]]:
    """(key, type, default) of every field, for ``clssl list``.

    ``cl_ssl.registry_index`` renders the same rows from the source without importing it.

    Example:
        >>> @dataclasses.dataclass
        ... class Opts:
        ...     mode: typing.Literal["a", "b"] = "a"
        ...     size: int | None = None
        >>> describe(Opts)
        [('mode', 'a|b', "'a'"), ('size', 'int | None', 'None')]
    """
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        rows.append((field_key(f.name), type_label(hints[f.name]), default))
    return rows


def type_label(annotation: Any) -> str:
    """Readable type: ``float``, ``int | None``, ``tuple[int, ...]``, ``a|b`` for a Literal."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "|".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_label(a) for a in args)
    if annotation is type(None):
        return "None"
    if origin is not None and args:
        inner = ", ".join("..." if a is Ellipsis else type_label(a) for a in args)
        return f"{getattr(origin, '__name__', origin)}[{inner}]"
    name = getattr(annotation, "__name__", None) or str(annotation)
    return name.replace("typing.", "")
