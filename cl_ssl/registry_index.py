"""What a registry's modules register, read from their source: ``clssl list`` without imports.

Importing a strategy or a method pulls in torch, Avalanche and Lightly (seconds), so the
names, summaries and options of registry entries are read from the modules' source with
:mod:`ast`. A module registers ``name`` when a top-level class or function carries the
decorator ``@register_<kind>("name")`` (one string literal). The summary is the first
line of its docstring; its options are the fields of the dataclass that its ``Options``
attribute names (in its body or a base class's), rendered as :func:`cl_ssl.options.describe`
renders the imported class (``tests/test_registry.py`` checks both agree for every entry).

What the source does not spell out is reported, never guessed: ``options=None`` (e.g. a
default that is not a literal, a base class behind a star import) or
``ModuleIndex.dynamic`` (a register call that is not such a decorator). The registry
imports those modules instead, so reading the source is a shortcut, not a second truth.

Example:
    >>> pfr = Path("strategies/pfr.py")  # from the repository root
    >>> index = index_module("cl_ssl.strategies.pfr", pfr, "register_strategy")
    >>> index.entries[0].name, index.entries[0].options[0]
    ('pfr', ('weight', 'float', '1.0'))
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import importlib.util
import pkgutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cl_ssl.options import describe, field_key

Row = tuple[str, str, str]
_DEPTH = 8  # import hops and base classes followed before giving up
_TYPING_ALIASES = {"List": "list", "Dict": "dict", "Tuple": "tuple", "Set": "set", "Type": "type"}
_FACTORIES = {"list": list, "dict": dict, "tuple": tuple, "set": set, "frozenset": frozenset}


class _Unknown(Exception):
    """The source alone cannot tell; the caller imports the module instead."""


@dataclass(frozen=True)
class IndexedEntry:
    """One registry entry as ``clssl list`` shows it.

    Attributes:
        name: Registry name.
        module: Dotted module whose import registers it.
        summary: First line of its docstring ("" when it has none).
        options: ``(key, type, default)`` of each field of its ``Options`` dataclass, as
            :func:`cl_ssl.options.describe` gives them; None when the source cannot tell.
    """

    name: str
    module: str
    summary: str
    options: tuple[Row, ...] | None


@dataclass(frozen=True)
class ModuleIndex:
    """What one module registers; ``dynamic`` when it registers more than its decorators say."""

    entries: tuple[IndexedEntry, ...] = ()
    dynamic: bool = False


def first_line(doc: str | None) -> str:
    """First line of a docstring, stripped (the one-line summary)."""
    text = (doc or "").strip()
    return text.splitlines()[0] if text else ""


def entry_from_object(name: str, obj: object) -> IndexedEntry:
    """The :class:`IndexedEntry` of an imported entry (what the source index must equal)."""
    options = getattr(obj, "Options", None)
    rows = (
        tuple(describe(options))
        if isinstance(options, type) and dataclasses.is_dataclass(options)
        else ()
    )
    return IndexedEntry(name, getattr(obj, "__module__", ""), first_line(obj.__doc__), rows)


def package_modules(package: str) -> Iterator[tuple[str, Path | None]]:
    """(dotted name, source file or None) of each public module of ``package``, unimported.

    Only the package's parents are imported (to find it), never the package or its modules.
    """
    paths = _package_dirs(package)
    if paths is None:
        raise ModuleNotFoundError(
            f"package '{package}' not found: reinstall cl-ssl (pip install -e .)"
        )
    for info in pkgutil.iter_modules(paths):
        if info.name.startswith("_"):
            continue
        folder = getattr(info.module_finder, "path", None)
        source = None
        if folder is not None:
            base = Path(folder) / info.name
            source = base / "__init__.py" if info.ispkg else base.with_suffix(".py")
        yield f"{package}.{info.name}", source if source is not None and source.is_file() else None


def find_source(module: str) -> Path | None:
    """The ``.py`` file of ``module``, found without importing anything new; None if none."""
    loaded = sys.modules.get(module)
    if loaded is not None:
        file = getattr(loaded, "__file__", None)
        return Path(file) if file and file.endswith(".py") else None
    parent, _, leaf = module.rpartition(".")
    if not parent:
        spec = importlib.util.find_spec(module)  # top level: imports nothing
        origin = spec.origin if spec is not None else None
        return Path(origin) if origin and origin.endswith(".py") else None
    for folder in _package_dirs(parent) or []:
        for candidate in (Path(folder) / f"{leaf}.py", Path(folder) / leaf / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _package_dirs(package: str) -> list[str] | None:
    loaded = sys.modules.get(package)
    if loaded is not None:
        return list(getattr(loaded, "__path__", []))
    parent, _, leaf = package.rpartition(".")
    if not parent or parent in sys.modules:
        # Imports nothing: a top-level name, or a child of an imported package (the
        # editable install's finder maps cl_ssl.strategies to strategies/ here).
        spec = importlib.util.find_spec(package)
        if spec is None or spec.submodule_search_locations is None:
            return None
        return list(spec.submodule_search_locations)
    dirs = [Path(d) / leaf for d in _package_dirs(parent) or []]
    return [str(d) for d in dirs if d.is_dir()] or None


def index_module(module: str, path: Path, decorator: str) -> ModuleIndex:
    """What ``module`` (source at ``path``) registers with ``@<decorator>("name")``."""
    source = _parse(str(path), module, path.stat().st_mtime_ns)
    names = {decorator} | {
        alias for alias, (_, name) in source.imports.items() if name == decorator
    }
    entries, used = [], set()
    for node in source.tree.body:
        if not isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for call in node.decorator_list:
            name = _registered_name(call, names)
            if name is not None:
                used.add(id(call))
                entries.append(_describe(source, node, name))
    dynamic = any(
        isinstance(n, ast.Call) and _callee(n.func) in names and id(n) not in used
        for n in ast.walk(source.tree)
    )
    return ModuleIndex(tuple(entries), dynamic)


def index_object(module: str, attribute: str, name: str) -> IndexedEntry | None:
    """``module:attribute`` (an entry point) registered as ``name``; None if not readable."""
    path = find_source(module)
    if path is None:
        return None
    try:
        found = _resolve(_parse(str(path), module, path.stat().st_mtime_ns), attribute, 0)
    except (_Unknown, SyntaxError):
        return None
    if found is None or not isinstance(found[1], (ast.ClassDef, ast.FunctionDef)):
        return None
    return _describe(found[0], found[1], name)


@dataclass
class _Source:
    """A parsed module and its top-level names."""

    module: str
    is_package: bool
    tree: ast.Module
    defs: dict[str, ast.AST] = field(default_factory=dict)
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, name)
    modules: dict[str, str] = field(default_factory=dict)  # `import a.b as c`: c -> a.b


@functools.lru_cache(maxsize=512)
def _parse(path: str, module: str, mtime_ns: int) -> _Source:
    source = _Source(module, path.endswith("__init__.py"), ast.parse(Path(path).read_bytes()))
    for node in source.tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            source.defs[node.name] = node
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            if isinstance(node.targets[0], ast.Name):
                source.defs[node.targets[0].id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            source.defs[node.target.id] = node
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(source, node.module, node.level)
            for alias in node.names:
                source.imports[alias.asname or alias.name] = (origin, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.partition(".")[0]
                source.modules[bound] = alias.name if alias.asname else bound
    return source


def _absolute(source: _Source, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    package = source.module if source.is_package else source.module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{module}" if module else package


def _load(module: str) -> _Source | None:
    path = find_source(module)
    return None if path is None else _parse(str(path), module, path.stat().st_mtime_ns)


def _is_stdlib(module: str) -> bool:
    return module.partition(".")[0] in sys.stdlib_module_names


def _callee(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _registered_name(call: ast.expr, decorators: set[str]) -> str | None:
    if not isinstance(call, ast.Call) or _callee(call.func) not in decorators:
        return None
    if len(call.args) == 1 and not call.keywords:
        arg = call.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    return None  # left unused: the module is marked dynamic


def _describe(source: _Source, node: ast.AST, name: str) -> IndexedEntry:
    summary = first_line(ast.get_docstring(node, clean=False))  # type: ignore[arg-type]
    options: tuple[Row, ...] | None = ()
    if isinstance(node, ast.ClassDef):
        try:
            options = _options_of(source, node, 0) or ()
        except (_Unknown, SyntaxError):
            options = None
    return IndexedEntry(name, source.module, summary, options)


def _resolve(source: _Source, name: str, depth: int) -> tuple[_Source, ast.AST] | None:
    """Where ``name`` is defined, following imports; None for builtins and the stdlib."""
    if depth > _DEPTH:
        raise _Unknown(name)
    if name in source.defs:
        return source, source.defs[name]
    if name in source.imports:
        module, original = source.imports[name]
        if _is_stdlib(module):
            return None
        target = _load(module)
        if target is None:
            raise _Unknown(name)
        return _resolve(target, original, depth + 1)
    if hasattr(builtins, name):
        return None
    raise _Unknown(name)


def _resolve_expr(source: _Source, expr: ast.expr, depth: int) -> tuple[_Source, ast.AST] | None:
    if isinstance(expr, ast.Subscript):  # Generic[T]
        return _resolve_expr(source, expr.value, depth)
    if isinstance(expr, ast.Name):
        return _resolve(source, expr.id, depth)
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        module = source.modules.get(expr.value.id)
        if module is not None and _is_stdlib(module):
            return None
        target = None if module is None else _load(module)
        if target is not None:
            return _resolve(target, expr.attr, depth + 1)
    raise _Unknown(ast.unparse(expr))


def _options_of(source: _Source, cls: ast.ClassDef, depth: int) -> tuple[Row, ...] | None:
    """Rows of ``cls.Options``; None when neither ``cls`` nor its bases set ``Options``."""
    if depth > _DEPTH:
        raise _Unknown(cls.name)
    for stmt in cls.body:
        value = _assigned(stmt, "Options")
        if value is not None:
            found = _resolve_expr(source, value, depth)
            if found is None or not isinstance(found[1], ast.ClassDef):
                raise _Unknown("Options")
            return _dataclass_rows(found[0], found[1], depth + 1)
    for base in cls.bases:
        found = _resolve_expr(source, base, depth)
        if found is None:
            continue  # builtin or stdlib: no Options there
        if not isinstance(found[1], ast.ClassDef):
            raise _Unknown(ast.unparse(base))
        rows = _options_of(found[0], found[1], depth + 1)
        if rows is not None:
            return rows
    return None


def _assigned(stmt: ast.stmt, name: str) -> ast.expr | None:
    if isinstance(stmt, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == name for t in stmt.targets
    ):
        return stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.value if stmt.target.id == name else None
    return None


def _dataclass_rows(source: _Source, cls: ast.ClassDef, depth: int) -> tuple[Row, ...]:
    """(key, type, default) of every field of dataclass ``cls``, bases' fields first."""
    if depth > _DEPTH or not any(
        _callee(d.func if isinstance(d, ast.Call) else d) == "dataclass" for d in cls.decorator_list
    ):
        raise _Unknown(cls.name)
    fields: dict[str, Row] = {}
    for base in reversed(cls.bases):
        found = _resolve_expr(source, base, depth)
        if found is None:
            continue
        if not isinstance(found[1], ast.ClassDef):
            raise _Unknown(ast.unparse(base))
        for row in _dataclass_rows(found[0], found[1], depth + 1):
            fields[row[0]] = row
    for stmt in cls.body:
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            continue
        if _head(stmt.annotation) in ("ClassVar", "InitVar", "KW_ONLY"):
            continue
        key = field_key(stmt.target.id)
        fields[key] = (key, _label(source, stmt.annotation, depth), _default(stmt.value))
    return tuple(fields.values())


def _head(annotation: ast.expr) -> str | None:
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return _head(ast.parse(annotation.value, mode="eval").body)
    if isinstance(annotation, ast.Subscript):
        return _head(annotation.value)
    return _callee(annotation)


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        raise _Unknown(ast.unparse(node)) from None


def _default(value: ast.expr | None) -> str:
    if value is None:
        return "(required)"
    if isinstance(value, ast.Call) and _callee(value.func) == "field":
        keywords = {k.arg: k.value for k in value.keywords}
        if "default" in keywords:
            return repr(_literal(keywords["default"]))
        factory = keywords.get("default_factory")
        if factory is None:
            return "(required)"
        if isinstance(factory, ast.Name) and factory.id in _FACTORIES:
            return repr(_FACTORIES[factory.id]())
        if isinstance(factory, ast.Lambda) and not factory.args.args:
            return repr(_literal(factory.body))
        raise _Unknown(ast.unparse(factory))
    return repr(_literal(value))


def _label(source: _Source, node: ast.expr, depth: int) -> str:
    """The annotation as :func:`cl_ssl.options.type_label` writes the evaluated type."""
    if depth > _DEPTH:
        raise _Unknown(ast.unparse(node))
    if isinstance(node, ast.Constant):
        if node.value is None:
            return "None"
        if isinstance(node.value, str):  # a quoted annotation
            return _label(source, ast.parse(node.value, mode="eval").body, depth + 1)
        raise _Unknown(repr(node.value))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return f"{_label(source, node.left, depth)} | {_label(source, node.right, depth)}"
    if isinstance(node, ast.Subscript):
        head = _original(source, node.value)
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head == "Literal":
            return "|".join(str(_literal(a)) for a in args)
        if head == "Optional":
            return f"{_label(source, args[0], depth)} | None"
        if head == "Union":
            return " | ".join(_label(source, a, depth) for a in args)
        if head == "Annotated":
            return _label(source, args[0], depth)
        inner = ", ".join(
            "..."
            if isinstance(a, ast.Constant) and a.value is Ellipsis
            else _label(source, a, depth)
            for a in args
        )
        return f"{_TYPING_ALIASES.get(head, head)}[{inner}]"
    if isinstance(node, ast.Name):
        target = source.defs.get(node.id)
        if isinstance(target, (ast.Assign, ast.AnnAssign)) and target.value is not None:
            return _label(source, target.value, depth + 1)  # a type alias
        if node.id in source.imports:
            module, original = source.imports[node.id]
            imported = None if _is_stdlib(module) else _load(module)
            if imported is None:
                return original
            return _label(imported, ast.Name(original), depth + 1)
        return node.id  # a class defined here, or a builtin
    if isinstance(node, ast.Attribute):
        return node.attr
    raise _Unknown(ast.unparse(node))


def _original(source: _Source, node: ast.expr) -> str | None:
    if isinstance(node, ast.Name) and node.id in source.imports:
        return source.imports[node.id][1]
    return _callee(node)
