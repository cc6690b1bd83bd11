"""Library use without the CLI: naive SimCLR over digits-periods, then the loss matrix.

Run: .venv/bin/python examples/quickstart.py
"""

from pathlib import Path

from cl_ssl.bench import run_bench
from cl_ssl.config import BenchConfig, TrainConfig

config = BenchConfig(
    stream="digits-periods",
    strategies="naive",
    train=TrainConfig(epochs=5, batch_size=128),
    out=Path("runs"),
    run_name="quickstart",
)
result = run_bench(config)
for strategy in result.strategies:
    print(f"{strategy.name}: SSL loss after experience i (rows) on experience j (columns)")
    print(strategy.loss_matrix.round(3).to_string())
    print(f"{strategy.images_per_second:.0f} training images/s")
