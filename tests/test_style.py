"""The code base stays ruff-clean (docstring rules included): CI enforces it through here."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_check_passes():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    # make test installs the dev extra: a missing ruff is a broken setup, not a reason to skip.
    assert ruff is not None, "ruff is not installed: pip install -e '.[dev]' (make test does)"
    result = subprocess.run(
        [ruff, "check", "cl_ssl", "strategies", "benchmarks", "tests", "examples"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
