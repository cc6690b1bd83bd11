"""Parameter importances (diagonal empirical Fisher) from the SSL loss, and the EWC penalty."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from avalanche.training.utils import ParamData, zerolike_params_dict
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from cl_ssl import distributed


def ssl_fisher(strategy, dataset, micro_batch: int) -> dict[str, ParamData]:
    """Mean squared gradient of the SSL loss per parameter over fixed-size micro-batches.

    F_k = 1/M * sum_m (d L_ssl(micro-batch m) / d theta_k)^2, where ``dataset`` is cut in
    order into M micro-batches of exactly ``micro_batch`` images (a remainder smaller than
    one is left out; a dataset smaller than one micro-batch is one micro-batch of all its
    images). Every micro-batch is augmented by the strategy's own two-view augmentation
    (no labels anywhere). The squared gradient of a mean loss over b images shrinks about
    as 1/b where gradient noise dominates, so the size is fixed (EWC's
    ``fisher-batch``), never the training batch: the importances, and so the meaning of
    EWC's lambda, do not change with ``--batch-size``. An SSL loss needs several images
    per micro-batch (NT-Xent's negatives, Barlow Twins' and VICReg's batch statistics).
    The model is put in eval mode, as Avalanche's EWC does, so BatchNorm statistics are not
    updated by this pass.

    Under torchrun ``micro_batch`` is global and must split evenly over the N ranks: each
    rank takes its ``micro_batch / N`` rows of every micro-batch (an unshuffled
    :class:`DistributedSampler` that drops the tail, so micro-batch m holds the images a
    single process would give it), the loss is the micro-batch's (gathered outputs) and DDP
    averages the gradients, so every rank squares the same d L_ssl(micro-batch m) / d theta
    and holds the same importances, as a single process would.

    Example:
        >>> importances = ssl_fisher(strategy, experience.dataset, micro_batch=64)
    """
    ranks = distributed.world_size()
    check_micro_batch(micro_batch)
    data = dataset.eval()
    size = min(micro_batch, len(data))  # a small experience is one micro-batch
    if size < 2 or size // ranks < 1:
        raise ValueError(
            f"the importance pass needs at least 2 images (and one per process), got {size}: "
            "EWC cannot estimate importances of an experience this small"
        )
    model = strategy.model
    network = getattr(strategy, "ddp", None) or model
    was_training = model.training
    model.eval()
    importances = zerolike_params_dict(model)
    sampler = (
        DistributedSampler(data, ranks, distributed.rank(), shuffle=False, drop_last=True)
        if ranks > 1
        else None
    )
    loader = DataLoader(
        data, batch_size=size // ranks, shuffle=False, sampler=sampler, drop_last=True
    )
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


def check_micro_batch(micro_batch: int) -> None:
    """Refuse a micro-batch below 2 images or one that does not split over the ranks."""
    if micro_batch < 2:
        raise ValueError(
            f"ewc.fisher-batch must be at least 2 (an SSL loss needs other images), got "
            f"{micro_batch}"
        )
    ranks = distributed.world_size()
    if micro_batch % ranks:
        raise ValueError(
            f"ewc.fisher-batch {micro_batch} is global and must split evenly over the {ranks} "
            f"processes: pass a multiple of {ranks}"
        )


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
