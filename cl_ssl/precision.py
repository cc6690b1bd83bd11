"""How a run's precision and memory-format settings resolve on a device (torch only).

Shared by the training run (``cl_ssl.strategy_run``) and ``clssl speed``'s hand-built step,
so both always apply the same rule.

Example:
    >>> resolve_precision("auto", torch.device("cpu")) is None  # fp32 on the CPU
    True
"""

from __future__ import annotations

import torch


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision``: ``auto`` is bf16 on CUDA, fp32 (None) on CPU.

    ``bf16`` on a CPU with native bf16 (AVX512-BF16, AMX) is ~2x faster per step for the
    small ResNet, but ``auto`` keeps fp32 there: other CPUs emulate bf16 slowly, and CPU runs
    are the fp32 reference.
    """
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def resolve_channels_last(channels_last: bool | None, device: torch.device) -> bool:
    """None (auto) is on: tensor cores want NHWC, and so does oneDNN on the CPU.

    Measured on the 2-core CPU (small ResNet, 32 px, batch 256, one thread): a naive step
    ~2.0 s contiguous vs ~1.0 s channels-last in fp32, ~0.8 vs ~0.5 s under bf16.
    """
    return True if channels_last is None else channels_last
