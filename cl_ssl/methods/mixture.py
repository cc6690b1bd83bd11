"""Several SSL objectives mixed with weights: ``--method simclr+barlow-twins``.

Each component method keeps its own projection head (and predictor), all on the same
backbone features; the model's head is their concatenation, so the model, its checkpoints
and every strategy see one projection ``[B, V, D_1 + ... + D_M]``. The loss is

    L = sum_m w_m * L_m(z_m),

with ``z_m`` component m's slice of the projections and ``w_m`` its mixing weight
(``--method-opt NAME.weight=W``, default 1.0; ``clssl evolve`` searches them in [0, 1]).
Strategies that distil through the method see each component's own terms on its slice,
mixed with the same weights: CaSSLe's term (:meth:`MixedMethod.distillation_loss`)

    L_distill = sum_m w_m * L_distill,m(q_m, z_t,m)

(SimCLR's slice: the contrastive distillation at CaSSLe's temperature, never NT-Xent), and
PNR's terms per component (:meth:`MixedMethod.parts`: SimCLR's slice gets the contrastive
pseudo-negatives, the others their own ``pnr_negative``). q = g(z) is one predictor's output
over the whole concatenation, split like the projections. The views are the first
component's augmentations: one batch of views feeds every objective. Methods with a
momentum target network of the whole model (BYOL) cannot be mixed: their target would
copy every head.

Example:
    >>> method = build_method("simclr+barlow-twins", {"barlow-twins": {"weight": "0.02"}})
    >>> method.weights
    (1.0, 0.02)
    >>> model = SSLModel(backbone, method.make_head(128), method.make_predictor())
    >>> loss = method(model(views))  # views [B, 2, 3, S, S]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cl_ssl.augment import AugmentConfig
from cl_ssl.methods.base import SSLMethod
from cl_ssl.models.ssl_model import SSLOutput

MIX_WEIGHT_KEY = "weight"
MIX_WEIGHT_RANGE = (0.0, 1.0)


class ConcatHeads(nn.Module):
    """Runs one head per component on its slice of the input, concatenates the outputs.

    ``in_sizes`` None gives every head the whole input (the projection heads, on backbone
    features); a head of None outputs nothing (a component without predictor).
    """

    def __init__(
        self,
        heads: Sequence[nn.Module | None],
        in_sizes: Sequence[int] | None,
        out_sizes: Sequence[int],
    ) -> None:
        super().__init__()
        self.heads = nn.ModuleList(h if h is not None else nn.Identity() for h in heads)
        self.active = tuple(h is not None for h in heads)
        self.in_sizes = None if in_sizes is None else tuple(in_sizes)
        self.out_sizes = tuple(out_sizes)

    def forward(self, x: Tensor) -> Tensor:
        parts = [x] * len(self.heads) if self.in_sizes is None else x.split(self.in_sizes, -1)
        outputs = [h(p) for h, p, on in zip(self.heads, parts, self.active, strict=True) if on]
        return torch.cat(outputs, dim=-1)


def _out_dim(head: nn.Module, in_dim: int) -> int:
    """Output width of ``head`` on ``in_dim`` inputs (a two-row probe, eval mode)."""
    mode = head.training
    with torch.no_grad():
        width = head.eval()(torch.zeros(2, in_dim)).shape[-1]
    head.train(mode)
    return int(width)


def check_mixture(
    names: Sequence[str], classes: Sequence[type[SSLMethod]], weights: Sequence[float]
) -> None:
    """Refuse a method with a target network of the whole model, or a negative weight."""
    for name, cls in zip(names, classes, strict=True):
        if cls.setup is not SSLMethod.setup or cls.after_step is not SSLMethod.after_step:
            raise ValueError(
                f"--method {'+'.join(names)}: {name} keeps a target network of the whole "
                "model and cannot be mixed; mix methods without one (simclr, barlow-twins, "
                "vicreg, simsiam)"
            )
    for name, weight in zip(names, weights, strict=True):
        if weight < 0:
            raise ValueError(f"--method-opt {name}.weight must be >= 0, got {weight}")


class MixedMethod(SSLMethod):
    """The weighted sum of several methods' losses on their own heads' projections."""

    def __init__(
        self, names: Sequence[str], methods: Sequence[SSLMethod], weights: Sequence[float]
    ):
        super().__init__()
        if len(methods) < 2 or len(methods) != len(weights) or len(names) != len(methods):
            raise ValueError("a mixture needs two or more methods, one weight and name each")
        check_mixture(names, [type(m) for m in methods], weights)
        self.names = tuple(names)
        self.components = nn.ModuleList(methods)
        self.weights = tuple(float(w) for w in weights)
        self.sizes: tuple[int, ...] = ()  # projection widths, set by make_head
        self.prediction_sizes: tuple[int, ...] = ()

    def make_head(self, feature_dim: int) -> nn.Module:
        heads = [m.make_head(feature_dim) for m in self.components]
        self.sizes = tuple(_out_dim(h, feature_dim) for h in heads)
        return ConcatHeads(heads, None, self.sizes)

    def make_predictor(self) -> nn.Module | None:
        if not self.sizes:
            raise RuntimeError("call make_head before make_predictor: the widths come from it")
        predictors = [m.make_predictor() for m in self.components]
        if all(p is None for p in predictors):
            return None
        self.prediction_sizes = tuple(
            0 if p is None else _out_dim(p, size)
            for p, size in zip(predictors, self.sizes, strict=True)
        )
        return ConcatHeads(predictors, self.sizes, self.prediction_sizes)

    def augment_config(self, image_size: int) -> AugmentConfig:
        return self.components[0].augment_config(image_size)

    def _split(self, tensor: Tensor) -> tuple[Tensor, ...]:
        if not self.sizes or tensor.shape[-1] != sum(self.sizes):
            raise ValueError(
                f"the mixture's projections are {sum(self.sizes)} wide ({self.sizes}), got "
                f"{tuple(tensor.shape)}: build the model with this method's make_head"
            )
        return tensor.split(self.sizes, dim=-1)

    def _mix(self, terms) -> Tensor:
        return sum(w * term for w, term in zip(self.weights, terms, strict=True))

    def loss(self, projections: Tensor) -> Tensor:
        return self._mix(
            m.loss(z) for m, z in zip(self.components, self._split(projections), strict=True)
        )

    def forward(self, output: SSLOutput, views: Tensor | None = None) -> Tensor:
        projections = self._split(output.projections)
        predictions: list[Tensor | None] = [None] * len(projections)
        if output.predictions is not None:
            parts = iter(output.predictions.split([s for s in self.prediction_sizes if s], -1))
            predictions = [next(parts) if s else None for s in self.prediction_sizes]
        return self._mix(
            m(SSLOutput(output.features, z, p), views)
            for m, z, p in zip(self.components, projections, predictions, strict=True)
        )

    def distillation_loss(
        self, predicted: Tensor, teacher: Tensor, temperature: float = 0.2
    ) -> Tensor:
        pairs = zip(self.components, self._split(predicted), self._split(teacher), strict=True)
        return self._mix(m.distillation_loss(p, t, temperature) for m, p, t in pairs)

    def parts(self) -> tuple[tuple[SSLMethod, slice, float], ...]:
        if not self.sizes:
            raise RuntimeError("call make_head first: the slices' widths come from it")
        ends = list(itertools.accumulate(self.sizes))
        starts = [0, *ends[:-1]]
        return tuple(
            (m, slice(a, b), w)
            for m, a, b, w in zip(self.components, starts, ends, self.weights, strict=True)
        )
