"""Parameter importances (diagonal empirical Fisher) from the SSL loss, and the EWC penalty."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from avalanche.training.utils import ParamData, zerolike_params_dict
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from cl_ssl import distributed


def ssl_fisher(strategy, dataset, batch_size: int) -> dict[str, ParamData]:
    """Mean squared gradient of the SSL loss per parameter over ``dataset``.

    F_k = 1/M * sum_m (d L_ssl(batch_m) / d theta_k)^2, with every batch augmented by the
    strategy's own two-view augmentation (no labels anywhere). The model is put in eval
    mode, as Avalanche's EWC does, so BatchNorm statistics are not updated by this pass.

    Under torchrun ``batch_size`` is per rank: each rank takes its rows of every global
    batch m, the loss is the global batch's (gathered outputs) and DDP averages the
    gradients, so every rank squares the same d L_ssl(batch_m) / d theta and holds the
    same importances, as a single process with the global batch would.

    Example:
        >>> importances = ssl_fisher(strategy, experience.dataset, batch_size=256)
    """
    model = strategy.model
    network = getattr(strategy, "ddp", None) or model
    was_training = model.training
    model.eval()
    importances = zerolike_params_dict(model)
    data = dataset.eval()
    ranks = distributed.world_size()
    sampler = (
        DistributedSampler(data, ranks, distributed.rank(), shuffle=False) if ranks > 1 else None
    )
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, sampler=sampler)
    batches = 0
    for images, *_ in loader:
        model.zero_grad()
        views = strategy.ssl_views(images)
        loss = strategy.method(distributed.gather_output(network(views)), views)
        loss.backward()
        for name, param in model.named_parameters():
            if param.grad is not None:
                importances[name].data += param.grad.detach().pow(2)
        batches += 1
    for importance in importances.values():
        importance.data /= max(1, batches)
    model.zero_grad()
    model.train(was_training)
    return importances


def ewc_penalty(
    model: torch.nn.Module,
    anchors: Mapping[str, ParamData],
    importances: Mapping[str, ParamData],
) -> Tensor:
    """sum_k F_k * (theta_k - theta*_k)^2 over the parameters that have an anchor."""
    device = next(model.parameters()).device
    penalty = torch.zeros((), device=device)
    for name, param in model.named_parameters():
        if name in anchors:
            anchor = anchors[name].expand(param.shape)
            importance = importances[name].expand(param.shape)
            penalty = penalty + (importance * (param - anchor).pow(2)).sum()
    return penalty
