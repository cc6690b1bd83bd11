"""Start-up of a cl-ssl process: `import cl_ssl.bench` in fresh interpreters, with jax hidden
from qpsolvers' solver probe (cl_ssl/lean_imports.py, as every cl-ssl process runs) and
without (`import qpsolvers` first, so its probe imports jax, as before that module existed).

    python examples/startup_time.py [--repeats 5]

Alternates the two, median/min/max wall seconds each (docs/performance.md, "Start-up of a
process"). Time it on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {"jax probed (before)": "import qpsolvers, cl_ssl.bench", "now": "import cl_ssl.bench"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    subprocess.run([sys.executable, "-c", CASES["now"]], check=True)  # a warm page cache
    seconds: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(repeats):
        for name, code in CASES.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            seconds[name].append(time.perf_counter() - start)
    for name, times in seconds.items():
        print(f"{name}: median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, {repeats} runs)")  # fmt: skip


if __name__ == "__main__":
    main()
