"""Name -> object registries, filled by decorators, module discovery and entry points.

Every pluggable concept (strategies, streams, methods, backbones, datasets) has one
:class:`Registry`. Entries register themselves with a decorator, like timm's
``register_model``::

    from cl_ssl.registry import register_strategy

    @register_strategy("my-strategy")
    class MyPlugin(SupervisedPlugin): ...

A registry finds its entries in three places, the first time a name is looked up:
modules already imported, every module of its *discovery package* (so dropping
``strategies/my_strategy.py`` is enough) and the installed packages' entry points in its
group (``cl_ssl.strategies``, ``cl_ssl.streams``, ...), so a third-party package can add
entries without touching this repository.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not in a registry; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of entries of one kind.

    Args:
        kind: What the entries are, used in messages ("strategy", "stream", ...).
        discover_package: Importable package whose modules are imported on first lookup.
        entry_point_group: Entry-point group scanned on first lookup.
    """

    def __init__(
        self, kind: str, discover_package: str | None = None, entry_point_group: str | None = None
    ) -> None:
        self.kind = kind
        self.discover_package = discover_package
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T] = {}
        self._discovered = False

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
            raise ValueError(f"{self.kind} '{name}' is registered twice: rename one of them")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        """The entry called ``name``; raises :class:`UnknownNameError` naming the valid ones."""
        self.discover()
        try:
            return self._entries[name]
        except KeyError:
            choices = ", ".join(self.names()) or "(none registered)"
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'; choose from: {choices}"
            ) from None

    def names(self) -> list[str]:
        """Sorted names of every entry."""
        self.discover()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        """(name, entry) pairs sorted by name."""
        for name in self.names():
            yield name, self._entries[name]

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._entries

    def discover(self, force: bool = False) -> None:
        """Import the discovery package's modules and load the entry points (once)."""
        if self._discovered and not force:
            return
        self._discovered = True
        if self.discover_package is not None:
            package = importlib.import_module(self.discover_package)
            for module in pkgutil.iter_modules(package.__path__):
                if not module.name.startswith("_"):
                    importlib.import_module(f"{self.discover_package}.{module.name}")
        if self.entry_point_group is not None:
            for entry_point in importlib.metadata.entry_points(group=self.entry_point_group):
                loaded = entry_point.load()
                # Loading a module runs its decorators; a bare object registers under the
                # entry point's name.
                if entry_point.name not in self._entries and not _is_module(loaded):
                    self.add(entry_point.name, loaded)


def _is_module(obj: object) -> bool:
    return type(obj).__name__ == "module"


strategies: Registry = Registry("strategy", "strategies", "cl_ssl.strategies")
streams: Registry = Registry("stream", "benchmarks", "cl_ssl.streams")
methods: Registry = Registry("method", "cl_ssl.methods", "cl_ssl.methods")
backbones: Registry = Registry("backbone", "cl_ssl.models", "cl_ssl.backbones")
datasets: Registry = Registry("dataset", "cl_ssl.data", "cl_ssl.datasets")

register_strategy = strategies.register
register_stream = streams.register
register_method = methods.register
register_backbone = backbones.register
register_dataset = datasets.register
