"""The package's import arrows: strategies -> kit -> core, never back up.

Parsed with ``ast`` (lazy imports inside functions count too), so a new upward import fails
here before it becomes a cycle or a hidden dependency of the core on one strategy's maths.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cl_ssl"
# Core modules allowed to import the kit, with the reason. None today: the core reaches
# strategies only through the registry, and strategies reach the kit.
KIT_ENTRY_POINTS: dict[str, str] = {}


def imported_modules(source: str, module: str) -> set[str]:
    """Every module named by an import in ``source`` (of dotted ``module``), relative resolved."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def core_modules() -> dict[str, Path]:
    """Dotted name -> file of every module of ``cl_ssl`` outside the kit and the plugin folders."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[1] in ("kit", "strategies", "benchmarks"):  # the last two: links to plugins
            continue
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def reaches(imports: set[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in imports)


def test_the_checker_sees_absolute_relative_and_lazy_imports():
    lazy = "def f():\n    from ..kit.teacher import Teacher\n"
    assert reaches(imported_modules(lazy, "cl_ssl.methods.simclr"), "cl_ssl.kit")
    assert reaches(imported_modules("from cl_ssl import kit", "cl_ssl.bench"), "cl_ssl.kit")
    assert reaches(imported_modules("import cl_ssl.kit.fisher", "cl_ssl.bench"), "cl_ssl.kit")
    assert not reaches(imported_modules("import cl_ssl.kitten", "cl_ssl.bench"), "cl_ssl.kit")


@pytest.mark.parametrize("module", sorted(core_modules()))
def test_the_core_does_not_import_the_kit(module):
    imports = imported_modules(core_modules()[module].read_text(), module)
    if module not in KIT_ENTRY_POINTS:
        assert not reaches(imports, "cl_ssl.kit"), f"{module} imports the strategy kit"
    assert not reaches(imports, "cl_ssl.strategies"), f"{module} imports a strategy module"


def test_the_kit_does_not_import_strategies():
    for path in sorted((PACKAGE / "kit").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        assert not reaches(imported_modules(path.read_text(), module), "cl_ssl.strategies"), path


def test_every_kit_module_serves_a_strategy():
    """The kit holds what strategies use: each of its modules is imported by one of them."""
    used = set()
    for path in sorted((ROOT / "strategies").glob("*.py")):
        used |= imported_modules(path.read_text(), f"cl_ssl.strategies.{path.stem}")
    for path in sorted((PACKAGE / "kit").rglob("*.py")):
        if path.name != "__init__.py":
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            internal = any(
                module in imported_modules(other.read_text(), "cl_ssl.kit.x")
                for other in (PACKAGE / "kit").rglob("*.py")
            )
            assert module in used or internal, f"{module} is used by no strategy"
