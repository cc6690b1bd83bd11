"""Experiments as TOML files and named presets: ``clssl bench --config exp.toml``.

A file holds ``BenchConfig``'s settings under its own names and sections, as ``bench.json``
does: top-level ``stream``, ``strategies``, ``strategy_options``, ... and the tables
``[train]``, ``[stream_options]`` and ``[evaluation]``. What a file leaves out keeps its
default. ``clssl bench ... --print-config`` writes the file of a command line
(:func:`to_toml`); presets are such files shipped in ``cl_ssl/presets/``.

Precedence, lowest first: defaults, ``--preset``, ``--config``, flags on the command line
(dicts of options merge key by key).

Example:
    >>> config = bench_config({"train.epochs": 2}, preset="demo", config=Path("exp.toml"))
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover  (the same parser, before it joined the standard library)
    import tomli as tomllib

from cl_ssl.flags import (
    OPTION_DICTS,
    Option,
    build,
    flatten,
    get_path,
    literal_choices,
    options,
    set_path,
    to_tree,
)

HEADER = "# clssl bench --config FILE (flags given on the command line override it)\n"


def load_file(path: Path, schema: list[Option], text: str | None = None) -> dict[str, Any]:
    """The settings tree of TOML file ``path``, every key and type checked against ``schema``.

    Raises:
        ValueError: One line naming the file, the line and the key: a TOML syntax error, an
            unknown key (with the closest known one) or a value of the wrong type.
        FileNotFoundError: No such file.
    """
    path = Path(path)
    if text is None:
        if not path.is_file():
            raise FileNotFoundError(f"--config {path}: no such file")
        text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: {error}: fix the TOML") from None
    known = {o.path: o for o in schema}
    tree: dict[str, Any] = {}
    for key, value in flatten(raw):
        where = f"{path} line {line_of(text, key)}"
        option = known.get(key)
        if option is None:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see `clssl bench --print-config`"
            raise ValueError(f"{where}: unknown key '{key}': {hint}")
        try:
            set_path(tree, key, coerce(value, option.annotation))
        except TypeError as error:
            raise ValueError(f"{where}: {key} = {value!r} {error}") from None
    return tree


def line_of(text: str, key: str) -> int | str:
    """The line (1-based) of dotted ``key`` in TOML ``text``, ``?`` when not found."""
    section = ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            section = re.sub(r'[\[\]"\s]', "", stripped.split("#")[0])
            continue
        name, equals, _ = stripped.partition("=")
        if not equals or stripped.startswith("#"):
            continue
        full = ".".join(filter(None, [section, re.sub(r'["\s]', "", name)]))
        if key == full or key.startswith(full + "."):
            return number
    return "?"


def coerce(value: Any, annotation: Any, lenient: bool = False) -> Any:
    """``value`` read from TOML as the field type ``annotation``; TypeError says what it needs.

    ``lenient``: a number or bool where a string is expected becomes its text (option
    values, which the strategies and methods parse from text: ``lambda = 1.0``).
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):  # X | None: TOML has no null, so X
        return coerce(value, next(a for a in args if a is not type(None)))
    if literal_choices(annotation):
        return coerce(value, type(literal_choices(annotation)[0]))
    if origin is tuple:
        if not isinstance(value, list):
            raise TypeError(f"should be a list, e.g. {[coerce_example(args[0])] * 2}")
        return tuple(coerce(v, args[0]) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError('should be a table, e.g. { name = { key = "value" } }')
        return {str(k): coerce(v, args[1], lenient=True) for k, v in value.items()}
    if annotation is Path:
        return Path(coerce(value, str))
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if lenient and annotation is str and isinstance(value, int | float | bool):
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if isinstance(value, int) else repr(value)
    if type(value) is not annotation:
        raise TypeError(f"should be {NAMES.get(annotation, annotation)}")
    return value


NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def coerce_example(annotation: Any) -> Any:
    """An example value of ``annotation`` for a message."""
    return {int: 1, float: 0.5, str: "a"}.get(annotation, "a")


def to_toml(config: Any, schema: Iterable[Option]) -> str:
    """The TOML file of ``config`` holding every setting of ``schema`` that is not None."""
    tree = to_tree(config)
    sections: dict[str, list[str]] = {}
    for option in schema:
        try:
            value = tree
            for part in option.path.split("."):
                value = value[part]
        except KeyError:
            continue
        if value is None:
            continue  # TOML has no null: a left-out key keeps the default
        section, _, key = option.path.rpartition(".")
        sections.setdefault(section, []).append(f"{toml_key(key)} = {toml_value(value)}")
    blocks = ["\n".join(sections.pop("", []))]
    blocks += [f"[{name}]\n" + "\n".join(lines) for name, lines in sections.items()]
    return HEADER + "\n\n".join(b for b in blocks if b) + "\n"


def toml_key(key: str) -> str:
    """A bare key when TOML allows one, else a quoted key."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """One TOML value: strings, paths, numbers, bools, lists and (inline) tables of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # JSON's escapes are TOML's basic-string escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {value!r} to TOML")


# --- the bench of a command line -------------------------------------------------------------


def bench_config(
    given: Mapping[str, Any], preset: str | None = None, config: Path | None = None
) -> Any:
    """The :class:`~cl_ssl.config.BenchConfig` of a preset, a file and the flags given.

    Args:
        given: ``{path: value}`` of the flags given on the command line (they win).
        preset: Preset name, the lowest layer.
        config: Experiment file, over the preset.
    """
    from cl_ssl.config import BenchConfig

    schema = options(BenchConfig)
    layers = [load_preset(preset, schema)] if preset else []
    layers += [load_file(config, schema)] if config else []
    tree: dict[str, Any] = {}
    for path, value in [kv for layer in layers for kv in flatten(layer)] + list(given.items()):
        set_path(tree, path, value)
    if not tree.get("stream"):
        raise ValueError("--stream is required: pass a stream name (see `clssl list`)")
    return build(BenchConfig, tree)


HOW_TO_RUN = (
    "progress", "launcher", "jobs", "threads_per_job",
    "address", "gpus_per_run", "cpus_per_run", "max_retries",
)  # fmt: skip
"""Bench settings a resumed run may change: how the runs are run, not what they compute."""


def resume_config(directory: Path, given: Mapping[str, Any], progress: bool) -> Any:
    """The bench a run directory holds, refusing given flags that disagree with it.

    Raises:
        ValueError: One line naming each flag, its value and the run's.
    """
    from cl_ssl.config import BenchConfig
    from cl_ssl.run_config import load_bench_config

    stored = load_bench_config(directory)
    saved = to_tree(stored)
    flags = {o.path: o.flag for o in options(BenchConfig)}
    conflicts = [
        f"{flags[path]} gives {path}={value!r}, the run has {get_path(saved, path)!r}"
        for path, value in given.items()
        if path not in HOW_TO_RUN and value != get_path(saved, path)
    ]
    if conflicts:
        raise ValueError(
            f"--resume {directory}: {'; '.join(conflicts)}: drop the flag (the run's "
            "bench.json decides) or start a new run"
        )
    how = {path: given[path] for path in HOW_TO_RUN if path in given}
    if how.get("launcher", stored.launcher) != stored.launcher:
        # Another launcher: the run's --jobs, --cpus-per-run, ... were the old launcher's.
        defaults = {f.name: f.default for f in dataclasses.fields(BenchConfig)}
        for path in HOW_TO_RUN[2:]:
            how.setdefault(path, defaults[path])
    return dataclasses.replace(stored, **{"progress": progress, **how})


# --- presets -------------------------------------------------------------------------------


def preset_folder() -> Any:
    """``cl_ssl/presets`` (installed as package data)."""
    return resources.files("cl_ssl") / "presets"


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.name[:-5] for p in preset_folder().iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    """The TOML text of preset ``name``.

    Raises:
        ValueError: No such preset (the message lists them).
    """
    path = preset_folder() / f"{name}.toml"
    if not path.is_file():
        raise ValueError(
            f"unknown preset '{name}'; choose from: {', '.join(preset_names())} "
            "(`clssl list --presets`)"
        )
    return path.read_text()


def preset_summary(name: str) -> str:
    """The first comment line of preset ``name`` (what it is)."""
    first = preset_text(name).splitlines()[0]
    return first.lstrip("# ").strip()


def load_preset(name: str, schema: list[Option]) -> dict[str, Any]:
    """The settings tree of preset ``name`` (checked like a file)."""
    return load_file(Path(f"presets/{name}.toml"), schema, preset_text(name))


__all__ = ["OPTION_DICTS", "load_file", "load_preset", "preset_names", "to_toml"]
