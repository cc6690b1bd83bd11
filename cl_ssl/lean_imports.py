"""Start-up cost of third-party imports that cl-ssl never uses.

avalanche-lib imports qpsolvers (for its GEM plugin), and qpsolvers probes every QP solver
it knows at import time, among them jaxopt's and qpax's, which import jax: about 1.3 s of
the ~7.5 s a ``clssl bench`` process spends importing, paid by every process (each launcher
job, torchrun rank and Ray task) for solvers cl-ssl never calls. :func:`install` hides jax
from qpsolvers' own import only, so qpsolvers lists its other solvers (quadprog, GEM's,
included) and jax stays importable afterwards for anyone who wants it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

HIDDEN = ("jax",)  # jaxopt and qpax import it first, so both are skipped with it


class _QpsolversWithoutJax(importlib.abc.MetaPathFinder):
    """Finds ``qpsolvers`` like the path finder, and runs its module with jax hidden."""

    def find_spec(self, name, path=None, target=None):
        if name != "qpsolvers":
            return None
        sys.meta_path.remove(self)  # qpsolvers is imported once: the finder's job ends here
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_without_jax(module: ModuleType) -> None:
            hidden = [n for n in HIDDEN if n not in sys.modules]
            for n in hidden:
                sys.modules[n] = None  # type: ignore[assignment]  # import raises ImportError
            try:
                exec_module(module)
            finally:
                for n in hidden:
                    if n in sys.modules and sys.modules[n] is None:  # still our placeholder
                        del sys.modules[n]

        spec.loader.exec_module = exec_without_jax  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Hide jax from qpsolvers' import, unless qpsolvers is imported already."""
    if "qpsolvers" not in sys.modules and not any(
        isinstance(f, _QpsolversWithoutJax) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _QpsolversWithoutJax())
