import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cl_ssl import registry as registries
from cl_ssl import strategies as strategy_package
from cl_ssl.options import describe
from cl_ssl.registry import Registry, UnknownNameError
from cl_ssl.registry import strategies as strategy_registry
from cl_ssl.registry_index import entry_from_object, first_line

REPO = Path(__file__).resolve().parents[1]
REGISTRIES = [
    registries.strategies,
    registries.streams,
    registries.methods,
    registries.backbones,
    registries.datasets,
]


def test_decorator_registers_and_lists_sorted():
    registry: Registry = Registry("thing")
    registry.register("b")(int)
    registry.register("a")(str)
    assert registry.names() == ["a", "b"]
    assert registry.get("b") is int


def test_duplicate_name_is_an_error():
    registry: Registry = Registry("thing")
    registry.register("x")(int)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("x")(str)


def test_unknown_name_lists_the_valid_ones():
    registry: Registry = Registry("strategy")
    registry.register("naive")(int)
    registry.register("ewc")(str)
    with pytest.raises(UnknownNameError) as error:
        registry.get("lwf")
    assert str(error.value) == "unknown strategy 'lwf'; choose from: ewc, naive"


@pytest.mark.parametrize(
    ("registry", "name"),
    [(r, name) for r in REGISTRIES for name in r.names()],
    ids=lambda x: x if isinstance(x, str) else x.kind,
)
def test_source_index_equals_the_imported_entry(registry: Registry, name: str):
    """What `clssl list` reads from source is what the imported object says."""
    indexed = registry.index()[name]
    obj = registry.get(name)
    assert indexed.module == obj.__module__
    assert indexed.summary == first_line(obj.__doc__) != ""
    options = getattr(obj, "Options", None)
    expected = tuple(describe(options)) if options is not None else ()
    assert indexed.options == expected
    assert indexed == entry_from_object(name, obj)


def test_every_registry_is_indexed_from_source():
    assert registries.strategies.names()[:3] == ["cassle", "ewc", "joint"]
    lwf = registries.strategies.index()["lwf-ssl"]
    assert lwf.module == "cl_ssl.strategies.lwf_ssl"
    assert lwf.options[0] == ("lambda", "float", "1.0")
    assert ("teacher-bn", "eval|batch", "'eval'") in lwf.options
    assert registries.methods.index()["simclr"].options[1] == ("hidden-dim", "int | None", "None")


@pytest.fixture
def thing_package(tmp_path: Path, monkeypatch):
    """A package ``thingpkg`` whose modules register into ``thing_registry.REGISTRY``."""
    (tmp_path / "thing_registry.py").write_text(
        "from cl_ssl.registry import Registry\n"
        "REGISTRY = Registry('thing', 'thingpkg')\n"
        "register_thing = REGISTRY.register\n"
    )
    (tmp_path / "thingpkg").mkdir()
    (tmp_path / "thingpkg" / "__init__.py").write_text("")
    (tmp_path / "thingpkg" / "kinds.py").write_text(
        "from typing import Literal\nMode = Literal['a', 'b']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / "thingpkg"
    for module in [m for m in sys.modules if m.split(".")[0] in ("thingpkg", "thing_registry")]:
        del sys.modules[module]


def write(path: Path, source: str) -> None:
    path.write_text(textwrap.dedent(source))


def test_index_reads_aliases_factories_and_inherited_options(thing_package: Path):
    write(
        thing_package / "fancy.py",
        '''
        from __future__ import annotations

        import dataclasses
        from dataclasses import dataclass, field
        from typing import Optional

        from thing_registry import register_thing as register
        from thingpkg.kinds import Mode


        @dataclass(frozen=True)
        class BaseOptions:
            mode: Mode = "a"
            size: Optional[int] = None


        @dataclass(frozen=True)
        class FancyOptions(BaseOptions):
            ks: tuple[int, ...] = field(default_factory=tuple)
            scale: float = -1e3
            size: int | None = 4


        class Base:
            """Not registered."""

            Options = FancyOptions


        @register("fancy")
        class Fancy(Base):
            """Fancy thing.

            More text.
            """


        @register("plain")
        def plain():
            """A function."""
        ''',
    )
    from thing_registry import REGISTRY

    assert REGISTRY.names() == ["fancy", "plain"]
    assert "thingpkg.fancy" not in sys.modules  # read from source
    indexed = REGISTRY.index()
    assert indexed["fancy"].options == (
        ("mode", "a|b", "'a'"),
        ("size", "int | None", "4"),
        ("ks", "tuple[int, ...]", "()"),
        ("scale", "float", "-1000.0"),
    )
    assert indexed["fancy"].summary == "Fancy thing."
    assert indexed["plain"].options == ()
    for name in ("fancy", "plain"):
        assert indexed[name] == entry_from_object(name, REGISTRY.get(name))


def test_what_the_source_cannot_tell_is_imported(thing_package: Path):
    write(
        thing_package / "computed.py",
        '''
        from dataclasses import dataclass

        from thing_registry import register_thing


        @dataclass
        class ComputedOptions:
            size: int = 2**10


        @register_thing("computed")
        class Computed:
            """Default not a literal."""

            Options = ComputedOptions


        for _name in ("loop-a", "loop-b"):
            register_thing(_name)(type(_name, (), {"__doc__": "Made in a loop."}))
        ''',
    )
    from thing_registry import REGISTRY

    assert REGISTRY.index()["computed"].options is None
    assert "thingpkg.computed" not in sys.modules
    # The loop's names are not in the source: names() imports the module to know them.
    assert REGISTRY.names() == ["computed", "loop-a", "loop-b"]
    assert "thingpkg.computed" in sys.modules
    listed = {entry.name: entry for entry in REGISTRY.catalogue()}
    assert listed["computed"].options == (("size", "int", "1024"),)
    assert listed["loop-a"].summary == "Made in a loop."


def test_a_name_in_two_modules_is_an_error_before_importing(thing_package: Path):
    for module in ("one", "two"):
        write(
            thing_package / f"{module}.py",
            """
            from thing_registry import register_thing

            @register_thing("same")
            def same():
                '''Same.'''
            """,
        )
    from thing_registry import REGISTRY

    with pytest.raises(ValueError, match=r"'same' is registered twice \(thingpkg.one and "):
        REGISTRY.names()


def test_new_file_in_strategies_is_discovered(tmp_path: Path, monkeypatch):
    """Dropping a module into the strategies folder registers it, no other edit."""
    (tmp_path / "dropped_in.py").write_text(
        "from avalanche.core import SupervisedPlugin\n"
        "from cl_ssl.registry import register_strategy\n"
        "@register_strategy('dropped-in')\n"
        "class DroppedIn(SupervisedPlugin):\n"
        "    '''Dropped in.'''\n"
        "    def __init__(self, options=None):\n"
        "        super().__init__()\n"
    )
    path = [*strategy_package.__path__, str(tmp_path)]
    monkeypatch.setattr(strategy_package, "__path__", path)
    monkeypatch.setattr(strategy_registry, "_entries", dict(strategy_registry._entries))
    monkeypatch.setattr(strategy_registry, "_index", None)  # restored after the test
    monkeypatch.delitem(sys.modules, "cl_ssl.strategies.dropped_in", raising=False)
    assert "dropped-in" in strategy_registry.names()
    assert "cl_ssl.strategies.dropped_in" not in sys.modules  # listed from source
    assert strategy_registry.get("dropped-in").__name__ == "DroppedIn"
    assert "cl_ssl.strategies.dropped_in" in sys.modules
    sys.modules.pop("cl_ssl.strategies.dropped_in", None)


def test_entry_point_objects_register_under_their_name(monkeypatch, tmp_path: Path):
    (tmp_path / "third_party_strategy.py").write_text(
        "class ThirdParty:\n    '''From another package.'''\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "third_party_strategy", raising=False)
    entry_point = importlib.metadata.EntryPoint(
        name="third-party", value="third_party_strategy:ThirdParty", group="cl_ssl.strategies"
    )
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group: [entry_point] if group == "cl_ssl.strategies" else [],
    )
    registry: Registry = Registry("strategy", entry_point_group="cl_ssl.strategies")
    # Listed from the entry point's source, not loaded.
    [listed] = registry.catalogue()
    assert (listed.name, listed.summary, listed.options) == (
        "third-party",
        "From another package.",
        (),
    )
    assert "third_party_strategy" not in sys.modules
    assert registry.get("third-party").__name__ == "ThirdParty"
    sys.modules.pop("third_party_strategy", None)


# The wheel installs strategies/ and benchmarks/ as cl_ssl.strategies and cl_ssl.benchmarks.


def test_registries_discover_the_installed_names():
    assert registries.strategies.discover_package == "cl_ssl.strategies"
    assert registries.streams.discover_package == "cl_ssl.benchmarks"
    assert Path(strategy_package.__path__[0]) == REPO / "strategies"


def test_cl_ssl_strategies_resolve_to_the_repository_folders_from_any_cwd(tmp_path: Path):
    """No top-level `strategies`/`benchmarks` exists or is needed (cwd off the repo)."""
    code = (
        "import importlib.util as u\n"
        "print(u.find_spec('cl_ssl.strategies.lwf_ssl').origin)\n"
        "print(u.find_spec('cl_ssl.benchmarks.split').origin)\n"
        "print(u.find_spec('strategies'), u.find_spec('benchmarks'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [
        str(REPO / "strategies" / "lwf_ssl.py"),
        str(REPO / "benchmarks" / "split.py"),
        "None None",
    ]


def test_pyproject_names_every_package_folder():
    tomllib = pytest.importorskip("tomllib")
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = setuptools["package-dir"]
    assert mapping == {"cl_ssl.strategies": "strategies", "cl_ssl.benchmarks": "benchmarks"}
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts) for init in REPO.glob("cl_ssl/**/__init__.py")
    }
    assert set(setuptools["packages"]) == on_disk | set(mapping)
    for folder in mapping.values():
        assert (REPO / folder / "__init__.py").is_file()
