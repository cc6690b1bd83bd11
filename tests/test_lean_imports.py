"""cl_ssl.lean_imports: qpsolvers (imported by avalanche for GEM) no longer imports jax."""

import importlib.util
import subprocess
import sys

import pytest


def run(code: str) -> list[str]:
    """What a fresh interpreter running ``code`` prints, split into words."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


JAX_IMPORTED = "import sys; print('jax' in sys.modules)"


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_qpsolvers_imported_through_cl_ssl_leaves_jax_out_and_importable():
    # Without cl-ssl, qpsolvers' solver probe imports jax (~1.3 s per process) ...
    assert run(f"import qpsolvers; {JAX_IMPORTED}") == ["True"]
    # ... after cl_ssl it does not; it keeps its other solvers (GEM's quadprog), and jax
    # imports when asked. (avalanche imports qpsolvers when GEM's module loads.)
    code = f"import cl_ssl, qpsolvers; {JAX_IMPORTED}; print('quadprog' in "
    code += "qpsolvers.available_solvers); import jax"
    assert run(code) == ["False", "True"]
