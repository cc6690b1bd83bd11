"""A complete custom SSL method in one file: alignment and uniformity on the hypersphere.

Copy this file into ``cl_ssl/methods/`` (e.g. ``cl_ssl/methods/align_uniform.py``) and
nothing else:

    clssl list                      # methods: align-uniform, with its --method-opt options
    clssl bench --stream digits-periods --method align-uniform --strategy naive,cassle

Or run it from here: ``python examples/custom_method.py`` registers it and trains naive and
CaSSLe with it on a short digits-periods run.

Wang & Isola (ICML 2020, https://arxiv.org/abs/2005.10242): on the L2-normalised
projections z_0, z_1 ``[B, D]`` of the two views,

    L = E_i ||z_0i - z_1i||^alpha + weight * (U(z_0) + U(z_1)) / 2,
    U(z) = log mean_{i != j} exp(-t ||z_i - z_j||^2),

alignment pulls the two views of an image together; uniformity spreads the images over the
sphere (it is what prevents collapse). Paper defaults: alpha 2, t 2, weight 1.

A method is an :class:`~cl_ssl.methods.base.SSLMethod`: a projection head
(:meth:`make_head`) and the loss of two views' projections ``[B, 2, D]`` (:meth:`loss`).
Everything else has a default: SimCLR's augmentations, CaSSLe's distillation as the
method's own loss between predicted and frozen projections, PNR's pseudo-negative term.
Options come from the ``Options`` dataclass (``--method-opt align-uniform.weight=0.5``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from lightly.models.modules.heads import ProjectionHead
from torch import Tensor, nn

from cl_ssl.methods.base import SSLMethod
from cl_ssl.registry import register_method


@dataclass(frozen=True)
class AlignUniformOptions:
    """Options, set with ``--method-opt align-uniform.KEY=VALUE`` and listed by ``clssl list``.

    Attributes:
        weight: Weight of the uniformity term.
        alpha: Exponent of the alignment distance.
        t: Temperature of the uniformity kernel.
        hidden_dim: Projector hidden size.
        output_dim: Projection size.
    """

    weight: float = 1.0
    alpha: float = 2.0
    t: float = 2.0
    hidden_dim: int = 512
    output_dim: int = 128


def uniformity(z: Tensor, t: float) -> Tensor:
    """``log mean_{i != j} exp(-t ||z_i - z_j||^2)`` of the rows of ``z`` ``[B, D]``."""
    return torch.pdist(z).pow(2).mul(-t).exp().mean().log()


@register_method("align-uniform")
class AlignUniform(SSLMethod):
    """Alignment and uniformity of normalised projections (Wang & Isola, 2020)."""

    Options = AlignUniformOptions

    def __init__(self, options: AlignUniformOptions | None = None) -> None:
        super().__init__()
        self.options = options or AlignUniformOptions()
        if self.options.t <= 0 or self.options.alpha <= 0:
            raise ValueError("align-uniform.t and align-uniform.alpha must be positive")

    def make_head(self, feature_dim: int) -> nn.Module:
        hidden, out = self.options.hidden_dim, self.options.output_dim
        return ProjectionHead(
            [(feature_dim, hidden, nn.BatchNorm1d(hidden), nn.ReLU()), (hidden, out, None, None)]
        )

    def loss(self, projections: Tensor) -> Tensor:
        if projections.ndim != 3 or projections.shape[1] != 2:
            raise ValueError(f"align-uniform needs [B, 2, D] projections, got {projections.shape}")
        z0, z1 = F.normalize(projections, dim=-1).unbind(1)
        align = (z0 - z1).norm(dim=1).pow(self.options.alpha).mean()
        uniform = (uniformity(z0, self.options.t) + uniformity(z1, self.options.t)) / 2
        return align + self.options.weight * uniform


if __name__ == "__main__":
    from cl_ssl.bench import run_bench
    from cl_ssl.config import BenchConfig, TrainConfig

    bench = run_bench(
        BenchConfig(
            stream="digits-periods",
            strategies="naive,cassle",
            train=TrainConfig(epochs=5, batch_size=128, method="align-uniform"),
            run_name="custom-method-example",
        )
    )
    print(bench.summary(numeric=False).to_markdown(index=False))
