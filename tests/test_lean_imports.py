"""cl_ssl.lean_imports: qpsolvers (imported by avalanche for GEM) no longer imports jax."""

import importlib.util
import subprocess
import sys

import pytest


def imports_jax(code: str) -> bool:
    """Whether a fresh interpreter running ``code`` ends with jax imported."""
    check = f"{code}\nimport sys; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()[-1] == "True"


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_avalanche_imported_through_cl_ssl_leaves_jax_out_and_importable():
    # Without cl-ssl, qpsolvers' solver probe imports jax (~1.3 s per process) ...
    assert imports_jax("import qpsolvers")
    # ... through cl-ssl, avalanche's import (GEM's qpsolvers included) does not, ...
    assert not imports_jax("import cl_ssl, avalanche.training.plugins.gem")
    # ... qpsolvers keeps its other solvers (GEM's quadprog) and jax imports when asked.
    code = "import cl_ssl, qpsolvers, jax; print('quadprog' in qpsolvers.available_solvers)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == ["True"], out.stderr[-2000:]
