"""A module a strategy trains alongside the model: CaSSLe's and PNR's predictor, PFR's projector.

The lifecycle the three share, as their paper codes run it:

- created on the first step that needs it, its input width read from that step's
  embeddings (no probe pass through the student), from its own seed
  ``experience_seed(train_seed, k, name)``, so creating it never shifts the training stream;
- trained like the model: parameter groups of the main optimizer with group 0's settings
  (lr, momentum, weight decay), added once (Avalanche's ``update_optimizer`` keeps groups it
  does not find in the model); its BatchNorm and bias parameters go to a second group with
  :data:`cl_ssl.lars.NO_DECAY` settings (no weight decay, no LARS adaptation), as the
  model's do (solo-learn's LARS excludes every 1-d parameter, predictors' included);
- persistent across experiences, carried by checkpoints (:meth:`TrainedModule.state_dict`),
  and joined to the optimizer again after a restore (:meth:`TrainedModule.attach`, from the
  plugin's ``before_training_exp``, before the saved optimizer state is loaded).

Example:
    >>> predictor = TrainedModule("cassle", lambda dim: cassle_predictor(dim, None))
    >>> g = predictor.get(strategy, dim=z.shape[-1])   # in before_backward
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from lightly.models.utils import get_weight_decay_parameters
from torch import nn

from cl_ssl.lars import NO_DECAY
from cl_ssl.template import experience_seed


class TrainedModule:
    """Holds one lazily built, optimizer-trained module of a strategy plugin.

    Args:
        name: The plugin's name; seeds the module's initialisation.
        build: ``input_dim -> module``.

    Attributes:
        module: The module, or None before its first use.
    """

    def __init__(self, name: str, build: Callable[[int], nn.Module]) -> None:
        self.name = name
        self.build = build
        self.module: nn.Module | None = None
        self.dim: int | None = None

    def get(self, strategy: Any, dim: int) -> nn.Module:
        """The module, built (seeded) and added to ``strategy.optimizer`` on first use."""
        if self.module is None:
            k = strategy.experience.current_experience
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(experience_seed(strategy.train_seed or 0, k, self.name))
                self.module, self.dim = self.build(dim), dim
            self.attach(strategy)
        return self.module

    def attach(self, strategy: Any) -> None:
        """Move the module to the device and add it to the optimizer unless it is there.

        Weights join with group 0's settings; BatchNorm and bias parameters with those
        settings overridden by :data:`~cl_ssl.lars.NO_DECAY`.
        """
        if self.module is None or _in_optimizer(self.module, strategy.optimizer):
            return
        self.module = self.module.to(strategy.device)
        group = strategy.optimizer.param_groups[0]
        settings = {key: value for key, value in group.items() if key != "params"}
        decay, no_decay = get_weight_decay_parameters([self.module])
        for params, overrides in ((decay, {}), (no_decay, NO_DECAY)):
            if params:
                strategy.optimizer.add_param_group({**settings, **overrides, "params": params})

    def state_dict(self) -> dict[str, Any]:
        """Weights and input width; empty before the module exists."""
        if self.module is None:
            return {}
        weights = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        return {"weights": weights, "dim": self.dim}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Rebuild the module from :meth:`state_dict` (it joins the optimizer on attach)."""
        if not state:
            self.module = self.dim = None
            return
        self.dim = int(state["dim"])
        self.module = self.build(self.dim)
        self.module.load_state_dict(state["weights"])


def _in_optimizer(module: nn.Module, optimizer: torch.optim.Optimizer) -> bool:
    first = next(module.parameters())
    return any(first is p for group in optimizer.param_groups for p in group["params"])
