"""One declaration per setting: dataclass fields carry their flag, help and check.

A settings dataclass declares each field once with :func:`setting`: the default, the help
text, the flag name where it is not the field's (``--run`` for ``run_name``), how the
command line's text becomes the value (``"20,200"`` -> ``(20, 200)``) and a check. From
these :func:`add_flags` builds a typer command's options, :func:`given_values` reads back
what the command line set, :func:`check_fields` runs the checks (from ``__post_init__``)
and :func:`build` makes the dataclasses. ``clssl bench``, ``continue``, ``evolve`` and
``speed``, experiment files (:mod:`cl_ssl.experiment_file`) and ``docs/cli.md`` all read the
same declarations.

Example:
    >>> @dataclasses.dataclass(frozen=True)
    ... class Opts:
    ...     epochs: int = setting(1, help="Epochs.", check=at_least(1))
    >>> options(Opts)[0].flags
    ('--epochs',)
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

Check = Callable[[Any], "str | None"]
"""A field's check: None when the value is fine, else what is wrong (after the flag name)."""


@dataclass(frozen=True)
class Setting:
    """What a field declares besides its type and default.

    Attributes:
        help: One line for ``--help``, ``docs/cli.md`` and experiment files.
        flags: Flag names; empty: ``--`` + the field name with ``-`` for ``_``.
        parse: Command-line value -> field value (the text of a tuple, a list of
            ``KEY=VALUE`` for a dict); None: the value as typer converted it.
        cli_type: The type typer parses when it is not the field's (``str`` for a tuple).
        check: Refuses a bad value (:data:`Check`); Literal fields are checked by type.
        flag: False for a field that has no flag (set from another, see ``same_as``).
        same_as: Dotted path, within the command's settings, this field copies.
        argument: A positional command-line argument rather than an option.
    """

    help: str
    flags: tuple[str, ...] = ()
    parse: Callable[[Any], Any] | None = None
    cli_type: Any = None
    check: Check | None = None
    flag: bool = True
    same_as: str | None = None
    argument: bool = False


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,  # noqa: A002  (typer's word for it)
    flags: tuple[str, ...] | str = (),
    parse: Callable[[Any], Any] | None = None,
    cli_type: Any = None,
    check: Check | None = None,
    flag: bool = True,
    same_as: str | None = None,
    argument: bool = False,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field declaring its flag (:class:`Setting`); mutable defaults by factory.

    A field without a default is a required option (or argument) unless its ``cli_type``
    admits None.
    """
    flags = (flags,) if isinstance(flags, str) else flags
    meta = {"setting": Setting(help, flags, parse, cli_type, check, flag, same_as, argument)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# --- checks --------------------------------------------------------------------------------


def at_least(low: float, why: str = "") -> Check:
    """``value >= low`` (None passes: "not set")."""
    return lambda v: None if v is None or v >= low else f"must be at least {low}, got {v}{why}"


def non_negative(v: Any) -> str | None:
    """``value >= 0`` (None passes)."""
    return None if v is None or v >= 0 else f"must be >= 0, got {v}"


def positive(v: Any) -> str | None:
    """``value > 0``."""
    return None if v > 0 else f"must be positive, got {v}"


def fraction(closed: bool = False) -> Check:
    """``0 <= value < 1`` (``<= 1`` when ``closed``)."""
    high = "1]" if closed else "1)"
    return lambda v: (
        None if 0.0 <= v <= 1.0 and (closed or v < 1.0) else f"must be in [0, {high}, got {v}"
    )


def switch(v: Any) -> str | None:
    """An on/off/auto value read from a file must be a bool or None."""
    return None if v is None or isinstance(v, bool) else f"must be on, off or auto, got {v!r}"


# --- command-line text -> value ----------------------------------------------------------------


def parse_ints(text: str, flag: str = "") -> tuple[int, ...]:
    """``"20,200"`` -> ``(20, 200)``."""
    try:
        return tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ValueError(f"bad {flag} '{text}': write integers separated by commas") from None


def parse_words(text: str) -> tuple[str, ...]:
    """``"all, experience"`` -> ``("all", "experience")``."""
    return tuple(part.strip() for part in str(text).split(",") if part.strip())


def parse_pairs(pairs: list[str], flag: str = "--stream-opt") -> dict[str, str]:
    """``["k=v", ...]`` -> dict, for ``--stream-opt``."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"bad {flag} '{pair}': write KEY=VALUE")
        parsed[key] = value
    return parsed


def parse_option_flags(flags: list[str], kind: str = "strategy") -> dict[str, dict[str, str]]:
    """``["lwf-ssl.lambda=1", "replay.mem-size=200"]`` -> nested dict by strategy (or method)."""
    example = "lwf-ssl.lambda=1" if kind == "strategy" else "simclr.temperature=0.2"
    parsed: dict[str, dict[str, str]] = {}
    for flag in flags:
        target, sep, value = flag.partition("=")
        name, dot, key = target.rpartition(".")
        if not sep or not dot or not name or not key:
            raise ValueError(f"bad option '{flag}': write {kind.upper()}.KEY=VALUE, e.g. {example}")
        parsed.setdefault(name, {})[key] = value
    return parsed


# --- reading the declarations ------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One field of a settings tree as a command-line option.

    Attributes:
        path: Dotted path from the root dataclass (``train.epochs``).
        field: The dataclass field.
        annotation: Its resolved type.
        setting: Its declaration.
    """

    path: str
    field: dataclasses.Field
    annotation: Any
    setting: Setting

    @property
    def name(self) -> str:
        """Python name of the command's parameter (``train__epochs``)."""
        return self.path.replace(".", "__")

    @property
    def flags(self) -> tuple[str, ...]:
        """Flag names, the first the one messages use."""
        return self.setting.flags or ("--" + self.field.name.replace("_", "-"),)

    @property
    def flag(self) -> str:
        """The main flag name, ``--epochs``."""
        return self.flags[0]

    @property
    def default(self) -> Any:
        """The field's default value (None when it has none)."""
        if self.field.default_factory is not dataclasses.MISSING:
            return self.field.default_factory()
        return None if self.field.default is dataclasses.MISSING else self.field.default

    @property
    def cli_type(self) -> Any:
        """The type typer parses: declared, else a list for dicts, else the field's."""
        if self.setting.cli_type is not None:
            return self.setting.cli_type
        if typing.get_origin(self.annotation) is dict:
            return list[str] | None
        return self.annotation

    @property
    def cli_default(self) -> Any:
        """The default as the command line spells it (``"20,200"``; None for lists)."""
        value = self.default
        if isinstance(value, tuple) and self.setting.parse is not None:
            return ",".join(map(str, value)) or None
        return None if isinstance(value, dict) else value

    def from_cli(self, raw: Any) -> Any:
        """The field value of the command line's ``raw``."""
        if self.setting.parse is None:
            return raw
        if typing.get_origin(self.annotation) is dict:
            return self.setting.parse(raw or [])
        return None if raw is None else self.setting.parse(raw)


def nested(annotation: Any) -> bool:
    """Whether a field holds another settings dataclass (recursed into)."""
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def options(cls: type, prefix: str = "", every: bool = False, recurse: bool = True) -> list[Option]:
    """The :class:`Option` of every declared field of ``cls`` (and of nested dataclasses).

    Nested dataclass fields are recursed into unless ``recurse`` is False. Only fields
    with a flag unless ``every`` (then also ``flag=False`` fields and fields without a
    :func:`setting`, with an empty help).
    """
    hints = typing.get_type_hints(cls)
    found: list[Option] = []
    for f in dataclasses.fields(cls):
        if nested(hints[f.name]):
            if not recurse:
                continue
            found += options(hints[f.name], f"{prefix}{f.name}.", every)
            continue
        declared = f.metadata.get("setting")
        if declared is None and not every:
            continue
        declared = declared or Setting(help="", flag=False)
        if declared.flag or every:
            found.append(Option(prefix + f.name, f, hints[f.name], declared))
    return found


def check_fields(instance: Any) -> None:
    """Run every declared check of ``instance``'s own fields and its Literal types.

    Raises:
        ValueError: ``--flag <what is wrong>`` for the first failing field.
    """
    hints = typing.get_type_hints(type(instance))
    for f in dataclasses.fields(instance):
        declared = f.metadata.get("setting")
        if declared is None:
            continue
        value = getattr(instance, f.name)
        choices = literal_choices(hints[f.name])
        if choices and value not in choices:
            raise ValueError(
                f"unknown {f.name.replace('_', ' ')} '{value}'; choose from: {', '.join(choices)}"
            )
        problem = declared.check(value) if declared.check else None
        if problem:
            flag = declared.flags[0] if declared.flags else "--" + f.name.replace("_", "-")
            raise ValueError(f"{flag} {problem}")


def literal_choices(annotation: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` (also inside ``X | None``), else ``()``."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next((c for a in typing.get_args(annotation) if (c := literal_choices(a))), ())
    return ()


# --- typer commands ----------------------------------------------------------------------------


def typer_parameter(option: Option, panel: str | None = None) -> inspect.Parameter:
    """The keyword-only typer parameter of ``option``."""
    kind = option.cli_type
    decls = option.flags
    literal = literal_choices(kind)
    if literal:  # typer would print click's usage block; the dataclass says it in one line
        kind = str | None if type(None) in typing.get_args(kind) else str
    if kind in (bool, bool | None) and len(decls) == 1:  # an on/off switch
        decls = (f"{decls[0]}/--no-{decls[0][2:]}",)
    help_text = option.setting.help
    if literal:
        help_text += f" ({', '.join(map(str, literal))})"
    if option.setting.argument:
        info = typer.Argument(help=help_text, show_default=False)
    else:
        info = typer.Option(*decls, help=help_text, rich_help_panel=panel)
    required = option.field.default is dataclasses.MISSING and (
        option.field.default_factory is dataclasses.MISSING
    )
    optional = type(None) in typing.get_args(kind)
    return inspect.Parameter(
        option.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=inspect.Parameter.empty if required and not optional else option.cli_default,
        annotation=Annotated[kind, info],
    )


def add_flags(*groups: tuple[list[Option], str | None]) -> Callable[[Callable], Callable]:
    """Give a typer command (taking ``**values``) the options of ``groups`` (options, panel)."""

    def decorate(func: Callable) -> Callable:
        # Evaluated annotations: typer reads a __signature__ as it is.
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        added = [typer_parameter(o, panel) for found, panel in groups for o in found]
        func.__signature__ = signature.replace(parameters=own + added)  # type: ignore[attr-defined]
        func.__annotations__ = {p.name: p.annotation for p in own + added}
        return func

    return decorate


def given_values(ctx: typer.Context, found: list[Option]) -> dict[str, Any]:
    """``{path: value}`` of the options set on the command line (not left at the default)."""
    values = {}
    for option in found:
        # By name: typer may bring its own click, whose enum is not click's.
        source = getattr(ctx.get_parameter_source(option.name), "name", "")
        if source in ("COMMANDLINE", "ENVIRONMENT"):
            values[option.path] = option.from_cli(ctx.params[option.name])
    return values


# --- values -> dataclasses ---------------------------------------------------------------------


def set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    """``tree["a"]["b"] = value`` for ``path`` ``"a.b"``; dicts of options merge by key."""
    *parents, last = path.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    if isinstance(value, dict) and isinstance(tree.get(last), dict):
        merged = dict(tree[last])
        for key, inner in value.items():
            both = isinstance(inner, dict) and isinstance(merged.get(key), dict)
            merged[key] = {**merged[key], **inner} if both else inner
        value = merged
    tree[last] = value


def get_path(tree: Mapping[str, Any], path: str) -> Any:
    """``tree["a"]["b"]`` for ``"a.b"``; KeyError when absent."""
    for part in path.split("."):
        tree = tree[part]
    return tree


def build(cls: type, tree: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """``cls`` from a nested ``{field: value}`` tree; absent fields keep their defaults.

    A ``same_as`` field copies the value at its path from the root tree (or its default).
    """
    root = tree if root is None else root
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        declared = f.metadata.get("setting")
        if nested(hints[f.name]):
            kwargs[f.name] = build(hints[f.name], tree.get(f.name, {}), root)
        elif declared is not None and declared.same_as:
            try:
                kwargs[f.name] = get_path(root, declared.same_as)
            except KeyError:
                pass
        elif f.name in tree:
            kwargs[f.name] = tree[f.name]
    return cls(**kwargs)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``("train.epochs", 1)``, ... of a nested tree (dicts of options are leaves)."""
    for key, value in tree.items():
        if isinstance(value, Mapping) and key not in OPTION_DICTS:
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


OPTION_DICTS = ("extra", "strategy_options", "method_options")
"""Dict-valued settings: their keys are option names, not fields."""


def to_tree(instance: Any) -> dict[str, Any]:
    """The nested ``{field: value}`` tree of a settings dataclass (values as they are)."""
    return {
        f.name: to_tree(v) if dataclasses.is_dataclass(v := getattr(instance, f.name)) else v
        for f in dataclasses.fields(instance)
    }


def path_value(value: Any) -> Any:
    """``Path`` values as text, for comparisons with JSON and TOML."""
    return str(value) if isinstance(value, Path) else value
