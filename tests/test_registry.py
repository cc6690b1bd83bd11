import importlib.metadata
import sys
from pathlib import Path

import pytest

import strategies
from cl_ssl.registry import Registry, UnknownNameError
from cl_ssl.registry import strategies as strategy_registry


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


def test_new_file_in_strategies_is_discovered(tmp_path: Path, monkeypatch):
    """Dropping a module into the strategies package registers it, no other edit."""
    (tmp_path / "dropped_in.py").write_text(
        "from avalanche.core import SupervisedPlugin\n"
        "from cl_ssl.registry import register_strategy\n"
        "@register_strategy('dropped-in')\n"
        "class DroppedIn(SupervisedPlugin):\n"
        "    def __init__(self, options=None):\n"
        "        super().__init__()\n"
    )
    monkeypatch.setattr(strategies, "__path__", [*strategies.__path__, str(tmp_path)])
    monkeypatch.setattr(strategy_registry, "_entries", dict(strategy_registry._entries))
    monkeypatch.delitem(sys.modules, "strategies.dropped_in", raising=False)
    assert "dropped-in" not in strategy_registry._entries
    strategy_registry.discover(force=True)
    assert strategy_registry.get("dropped-in").__name__ == "DroppedIn"
    sys.modules.pop("strategies.dropped_in", None)


def test_entry_point_objects_register_under_their_name(monkeypatch, tmp_path: Path):
    (tmp_path / "third_party_strategy.py").write_text(
        "class ThirdParty:\n    '''From another package.'''\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_point = importlib.metadata.EntryPoint(
        name="third-party", value="third_party_strategy:ThirdParty", group="cl_ssl.strategies"
    )
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda group: [entry_point] if group == "cl_ssl.strategies" else [],
    )
    registry: Registry = Registry("strategy", entry_point_group="cl_ssl.strategies")
    assert registry.get("third-party").__name__ == "ThirdParty"
