"""Name -> object registries, filled by decorators, module discovery and entry points.

Every pluggable concept (strategies, streams, methods, backbones, datasets) has one
:class:`Registry`. Entries register themselves with a decorator, like timm's
``register_model``::

    from cl_ssl.registry import register_strategy

    @register_strategy("my-strategy")
    class MyPlugin(SupervisedPlugin): ...

A registry finds its entries in three places: modules already imported, every module of
its *discovery package* (so dropping ``strategies/my_strategy.py``, installed as
``cl_ssl.strategies.my_strategy``, is enough) and the installed packages' entry points in
its group (``cl_ssl.strategies``, ``cl_ssl.streams``, ...), so a third-party package can add
entries without touching this repository.

Nothing is imported to know what is there: the discovery package's modules and the entry
points' targets are read from source (:mod:`cl_ssl.registry_index`), so ``names()`` and
``catalogue()`` (``clssl list``) cost milliseconds, and ``get(name)`` imports the one module
that registers ``name``. A module whose registrations its source does not spell out is
imported by ``names()``; ``discover()`` imports everything.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from cl_ssl.registry_index import (
    IndexedEntry,
    entry_from_object,
    index_module,
    index_object,
    package_modules,
)

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not in a registry; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of entries of one kind.

    Args:
        kind: What the entries are, used in messages ("strategy", "stream", ...); modules
            register with the decorator ``register_<kind>``.
        discover_package: Package whose modules are indexed from source, imported on demand.
        entry_point_group: Entry-point group whose targets are indexed, loaded on demand.
    """

    def __init__(
        self, kind: str, discover_package: str | None = None, entry_point_group: str | None = None
    ) -> None:
        self.kind = kind
        self.discover_package = discover_package
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T] = {}
        self._discovered = False
        self._index: dict[str, IndexedEntry] | None = None
        self._unindexed: list[str] = []  # modules to import to know what they register
        self._entry_points: dict[str, importlib.metadata.EntryPoint] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering its argument under ``name``; duplicate names are an error."""

        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name`` (the non-decorator form)."""
        existing = self._entries.get(name)
        if existing is not None and existing is not obj:
            raise ValueError(
                f"{self.kind} '{name}' is registered twice ({_origin(existing)} and "
                f"{_origin(obj)}): rename one of them{_same_file_hint(existing, obj)}"
            )
        self._entries[name] = obj

    def get(self, name: str) -> T:
        """The entry called ``name``; raises :class:`UnknownNameError` naming the valid ones."""
        if name not in self._entries:
            if name in self.index():
                self._load(name)
            if name not in self._entries:
                self.discover()
        try:
            return self._entries[name]
        except KeyError:
            choices = ", ".join(self.names()) or "(none registered)"
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'; choose from: {choices}"
            ) from None

    def names(self) -> list[str]:
        """Sorted names of every entry (imports only modules the index cannot read)."""
        index = self.index()
        while self._unindexed:
            importlib.import_module(self._unindexed.pop())
        return sorted(set(self._entries) | set(index))

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, entry) pairs sorted by name; imports every entry."""
        self.discover()
        for name in self.names():
            yield name, self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def catalogue(self) -> list[IndexedEntry]:
        """Name, summary and options of every entry, sorted, without importing them.

        An entry already imported is described from the object; one whose source does not
        tell its options is imported (:mod:`cl_ssl.registry_index`).
        """
        rows = []
        for name in self.names():
            entry = self.index().get(name)
            if name in self._entries or entry is None or entry.options is None:
                entry = entry_from_object(name, self.get(name))
            rows.append(entry)
        return rows

    def index(self) -> dict[str, IndexedEntry]:
        """Name -> entry as read from the discovery package's and entry points' source."""
        if self._index is None:
            self._index = self._build_index()
        return self._index

    def discover(self, force: bool = False) -> None:
        """Import every module of the discovery package and load the entry points (once).

        ``force`` also re-reads the package (a file dropped in since the first look).
        """
        if self._discovered and not force:
            return
        self._discovered = True
        if force:
            self._index = None
        for name, entry in self.index().items():
            if name not in self._entry_points:
                importlib.import_module(entry.module)
        self.names()  # imports what the index could not read
        for name in list(self._entry_points):
            self._load(name)

    def _build_index(self) -> dict[str, IndexedEntry]:
        index: dict[str, IndexedEntry] = {}
        self._unindexed, self._entry_points = [], {}
        decorator = f"register_{self.kind}"
        if self.discover_package is not None:
            for module, source in package_modules(self.discover_package):
                if source is None:
                    self._unindexed.append(module)
                    continue
                found = index_module(module, source, decorator)
                if found.dynamic:
                    self._unindexed.append(module)
                for entry in found.entries:
                    if entry.name in index:
                        raise ValueError(
                            f"{self.kind} '{entry.name}' is registered twice ("
                            f"{index[entry.name].module} and {module}): rename one of them"
                        )
                    index[entry.name] = entry
        if self.entry_point_group is not None:
            for entry_point in importlib.metadata.entry_points(group=self.entry_point_group):
                if entry_point.name in index:
                    continue  # loading it would register nothing new under this name
                self._entry_points[entry_point.name] = entry_point
                read = None
                if entry_point.attr:
                    read = index_object(entry_point.module, entry_point.attr, entry_point.name)
                index[entry_point.name] = read or IndexedEntry(
                    entry_point.name, entry_point.module, "", None
                )
        return index

    def _load(self, name: str) -> None:
        entry_point = self._entry_points.get(name)
        if entry_point is None:
            importlib.import_module(self.index()[name].module)
            return
        loaded = entry_point.load()
        # Loading a module runs its decorators; a bare object registers under the entry
        # point's name.
        if name not in self._entries and not _is_module(loaded):
            self.add(name, loaded)


def _is_module(obj: object) -> bool:
    return type(obj).__name__ == "module"


def _origin(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _same_file_hint(first: object, second: object) -> str:
    """A hint when one file was imported under two module names (``strategies.x`` too)."""
    files = {
        getattr(sys.modules.get(getattr(obj, "__module__", "")), "__file__", None)
        for obj in (first, second)
    }
    if len(files) == 1 and None not in files:
        return (
            ", or import its module by its installed name only (cl_ssl.strategies.x, "
            "cl_ssl.benchmarks.x), never by its folder's name"
        )
    return ""


strategies: Registry = Registry("strategy", "cl_ssl.strategies", "cl_ssl.strategies")
streams: Registry = Registry("stream", "cl_ssl.benchmarks", "cl_ssl.streams")
methods: Registry = Registry("method", "cl_ssl.methods", "cl_ssl.methods")
backbones: Registry = Registry("backbone", "cl_ssl.models", "cl_ssl.backbones")
datasets: Registry = Registry("dataset", "cl_ssl.data", "cl_ssl.datasets")

register_strategy = strategies.register
register_stream = streams.register
register_method = methods.register
register_backbone = backbones.register
register_dataset = datasets.register
