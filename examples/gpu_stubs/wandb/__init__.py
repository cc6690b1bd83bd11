"""Stand-in for Weights & Biases on the GPU machine, which has no ``wandb``.

Avalanche imports ``wandb`` when its metrics package loads (for its W&B logger); cl-ssl never
logs to W&B, and the real wheel with its telemetry dependencies would take ~25 MiB of the
64 MiB that travel. examples/gpu_check.sh puts this folder on the path only when ``import
wandb`` fails; any use of it raises, so nothing silently pretends to log.
"""


def __getattr__(name: str):
    if name.startswith("__"):  # probes (hasattr, copy, pickle) must see a plain module
        raise AttributeError(name)
    raise ImportError(
        f"wandb.{name}: this is examples/gpu_stubs/wandb, a stand-in so Avalanche imports; "
        "install wandb to log to Weights & Biases"
    )
