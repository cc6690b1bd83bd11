"""LARS as solo-learn and CaSSLe run it: trust coefficient 0.02, clipped rate, BN/bias excluded.

Lightly's :class:`~lightly.utils.lars.LARS` (which this subclasses for its argument checks)
has no rate clipping, defaults to a trust coefficient of 0.001 and adapts a parameter only
when its group's weight decay is non-zero, so ``--weight-decay 0`` silently turns it into
plain SGD. solo-learn's ``solo/utils/lars.py`` (CaSSLe's ``LARSWrapper`` is the same
update), with the settings of every ``scripts/pretrain/cifar/*.yaml`` (``eta: 0.02``,
``clip_lr: True``, ``exclude_bias_n_norm: True``), updates each parameter p with gradient g,
group rate lr, weight decay wd, trust coefficient eta and momentum mu as:

    r = eta * ||p|| / (||g|| + wd * ||p|| + eps)       (local rate, adapted parameters)
    r = min(r / lr, 1)                                  (clip_lr: lr * r <= lr)
    d = r * (g + wd * p)    if adapted and ||p|| > 0 and ||g|| > 0,  else  d = g
    v = mu * v + d  (v = d on the first step);   p = p - lr * v

whatever the weight decay (0 included). BatchNorm and bias parameters are not adapted and
not decayed (``d = g``): cl-ssl puts them in a group with :data:`NO_DECAY` settings
(``weight_decay=0``, ``lars_adapt=False``), solo-learn tests ``p.ndim == 1``.

Example:
    >>> optimizer = LARS([{"params": weights}, {"params": norms_and_biases, **NO_DECAY}],
    ...                  lr=0.3, momentum=0.9, weight_decay=1e-4)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from lightly.utils.lars import LARS as LightlyLARS

# Settings of the parameter group holding BatchNorm and bias parameters (any optimizer).
NO_DECAY: dict[str, Any] = {"weight_decay": 0.0, "lars_adapt": False}


class LARS(LightlyLARS):
    """SGD with solo-learn's LARS scaling (see the module docstring for the update).

    Args:
        params: Parameters or groups; a group with ``lars_adapt=False`` is plain SGD.
        lr: Learning rate.
        momentum: Momentum factor.
        weight_decay: Weight decay (L2), applied inside the adapted step.
        trust_coefficient: eta (solo-learn's ``eta``; 0.02 in its recipes).
        clip_lr: Cap the adapted rate lr * r at lr (solo-learn's ``clip_lr``).
        eps: Added to the denominator of r.
    """

    def __init__(
        self,
        params: Any,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.02,
        clip_lr: bool = True,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
            eps=eps,
        )
        self.defaults.update(clip_lr=clip_lr, lars_adapt=True)  # for groups added later
        for group in self.param_groups:
            group.setdefault("clip_lr", clip_lr)
            group.setdefault("lars_adapt", True)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            # A state saved by Lightly's LARS (older checkpoints) resumes as Lightly ran it:
            # no clipping, adaptation only where the group's weight decay is non-zero.
            group.setdefault("clip_lr", False)
            group.setdefault("lars_adapt", group["weight_decay"] != 0)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update of every parameter with a gradient (module docstring's formula)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd, momentum = group["lr"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                if group["lars_adapt"]:
                    # Tensor-only (no host read): where a norm is 0 the step stays d = g.
                    p_norm, g_norm = torch.norm(p), torch.norm(d_p)
                    rate = (
                        group["trust_coefficient"] * p_norm / (g_norm + wd * p_norm + group["eps"])
                    )
                    if group["clip_lr"]:
                        rate = torch.clamp(rate / lr, max=1.0)
                    adapted = (d_p + wd * p) * rate
                    d_p = torch.where((p_norm > 0) & (g_norm > 0), adapted, d_p)
                if momentum != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        buf = state["momentum_buffer"] = torch.clone(d_p).detach()
                    else:
                        buf = state["momentum_buffer"]
                        buf.mul_(momentum).add_(d_p, alpha=1 - group["dampening"])
                    d_p = d_p.add(buf, alpha=momentum) if group["nesterov"] else buf
                p.add_(d_p, alpha=-lr)
        return loss
