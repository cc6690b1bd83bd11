"""Rows timed outside Avalanche: the hand-written loops, the data pipeline and the model step.

- ``loop-lightly``: a SimCLR loop as Lightly's documentation writes it: a torch
  ``DataLoader`` over PIL images, Lightly's ``SimCLRTransform`` per image in the loader's
  workers, ``SimCLRProjectionHead``, ``NTXentLoss``, one forward per view, Adam.
- ``loop-batched``: the same loop fed uint8 batches (no workers) and augmented on the
  device by cl-ssl's batched Kornia pipeline; both views in one forward, as cl-ssl does.
- ``data`` / ``data-disk``: loader + batched augmentation, no model, with cl-ssl's loader
  workers: in memory, or from image files decoded per item.
- ``data-device``: the same images held on the device, batches indexed there
  (:class:`~cl_ssl.data.device_resident.ResidentBatches`, ``--data-on-device``), then the
  batched augmentation.
- ``step``: cl-ssl's model and SimCLR loss on pre-made views: forward, backward, step, with
  cl-ssl's precision and memory format.

Every row uses the backbone named by the config and ticks its :class:`Stopwatch` after
each step, so batch loading is inside the timed windows (except for ``step``, by design).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from cl_ssl.data.files import ImageDataset
from cl_ssl.precision import resolve_channels_last, resolve_precision
from cl_ssl.speed.config import SpeedConfig
from cl_ssl.speed.data import DataSource
from cl_ssl.speed.timing import Stopwatch

PROJECTION_DIM = 128  # cl-ssl's SimCLR head (SimCLROptions.output_dim)
TEMPERATURE = 0.5  # cl-ssl's SimCLR temperature (SimCLROptions.temperature)


class PILViews(Dataset):
    """Items of a uint8 dataset as PIL images through ``transform`` (a torchvision-style set).

    Module level, so DataLoader workers can pickle it.
    """

    def __init__(self, data: ImageDataset, transform) -> None:
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        from torchvision.transforms.functional import to_pil_image

        image, label = self.data[index]
        return self.transform(to_pil_image(image)), label


def autocast(config: SpeedConfig, device: torch.device) -> AbstractContextManager:
    """The forward's autocast context for ``config.precision`` (a no-op for fp32)."""
    dtype = resolve_precision(config.precision, device)
    return torch.autocast(device.type, dtype or torch.float32, enabled=dtype is not None)


def loader(config: SpeedConfig, data: Dataset, workers: int, device: torch.device) -> DataLoader:
    """Shuffled full batches; persistent workers so no window pays their start."""
    return DataLoader(
        data,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )


def lightly_model(config: SpeedConfig) -> nn.Module:
    """The configured backbone + Lightly's ``SimCLRProjectionHead`` (cl-ssl's dimensions)."""
    from lightly.models.modules import SimCLRProjectionHead

    from cl_ssl.registry import backbones

    backbone = backbones.get(config.backbone)(config.image_size)
    dim = backbone.feature_dim
    return nn.Sequential(backbone, SimCLRProjectionHead(dim, dim, PROJECTION_DIM))


def loop_lightly(config: SpeedConfig, source: DataSource, device, watch: Stopwatch) -> dict:
    """Lightly's per-image ``SimCLRTransform`` in loader workers (one per core by default)."""
    from lightly.loss import NTXentLoss
    from lightly.transforms import SimCLRTransform

    size = config.image_size
    transform = SimCLRTransform(input_size=size, gaussian_blur=0.5 if size > 64 else 0.0)
    data = PILViews(source.dataset(watch.total * config.batch_size, config.storage), transform)
    workers = config.loop_workers(per_image=True)
    model = lightly_model(config).to(device)
    criterion = NTXentLoss(temperature=TEMPERATURE)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    watch.begin()
    for (x0, x1), _ in loader(config, data, workers, device):
        x0, x1 = x0.to(device, non_blocking=True), x1.to(device, non_blocking=True)
        with autocast(config, device):
            loss = criterion(model(x0), model(x1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if watch.tick(x0.shape[0]):
            break
    return {"workers": workers}


def batched_augment(config: SpeedConfig, device: torch.device):
    """cl-ssl's Kornia two-view augmentation with SimCLR's parameters, on ``device``."""
    from cl_ssl.augment import AugmentConfig, make_augment

    return make_augment("batched", AugmentConfig.for_image_size(config.image_size)).to(device)


def loop_batched(config: SpeedConfig, source: DataSource, device, watch: Stopwatch) -> dict:
    """uint8 batches, batched augmentation on the device, both views in one forward."""
    from lightly.loss import NTXentLoss

    workers = config.loop_workers(per_image=config.storage == "disk")
    data = source.dataset(watch.total * config.batch_size, config.storage)
    augment = batched_augment(config, device)
    model = lightly_model(config).to(device)
    criterion = NTXentLoss(temperature=TEMPERATURE)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    watch.begin()
    for images, _ in loader(config, data, workers, device):
        views = augment(images.to(device, non_blocking=True))  # [B, 2, 3, S, S]
        with autocast(config, device):
            z = model(views.flatten(0, 1)).unflatten(0, views.shape[:2])
            loss = criterion(z[:, 0], z[:, 1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if watch.tick(images.shape[0]):
            break
    return {"workers": workers}


def data_pipeline(
    config: SpeedConfig, source: DataSource, device, watch: Stopwatch, storage: str
) -> dict:
    """Loader + batched augmentation, no model: the pipeline's ceiling on images/s."""
    workers = config.cl_ssl_workers(storage)
    data = source.dataset(watch.total * config.batch_size, storage)
    augment = batched_augment(config, device)
    watch.begin()
    for images, _ in loader(config, data, workers, device):
        augment(images.to(device, non_blocking=True))
        if watch.tick(images.shape[0]):
            break
    return {"workers": workers}


def data_device(config: SpeedConfig, source: DataSource, device, watch: Stopwatch) -> dict:
    """Batches indexed from the images held on the device + batched augmentation."""
    from torch.utils.data import RandomSampler

    from cl_ssl.data.device_resident import ResidentBatches

    data = source.dataset(watch.total * config.batch_size, "memory")
    augment = batched_augment(config, device)
    batches = ResidentBatches(
        data.images, data.labels, RandomSampler(data), config.batch_size, True, device
    )
    for images, _ in batches:
        augment(images)
        if watch.tick(images.shape[0]):
            break
    return {"workers": 0}


def model_step(config: SpeedConfig, source: DataSource, device, watch: Stopwatch) -> dict:
    """cl-ssl's SSL model and loss on one pre-augmented batch: the step's ceiling."""
    model, method = cl_ssl_model(config)
    model.to(device)
    images = source.memory().images[: config.batch_size]
    images = images[torch.arange(config.batch_size) % len(images)]
    views: Tensor = batched_augment(config, device)(images.to(device))
    if resolve_channels_last(config.channels_last, device):  # the rule cl-ssl's runs follow
        from cl_ssl.template import views_channels_last

        model.to(memory_format=torch.channels_last)
        views = views_channels_last(views)
    if config.compile:  # as cl_ssl.strategy_run.build_model does for --compile
        model.backbone.compile()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    watch.begin()
    while True:
        with autocast(config, device):
            loss = method(model(views), views)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if watch.tick(views.shape[0]):
            return {"workers": 0}


def cl_ssl_model(config: SpeedConfig):
    """cl-ssl's SimCLR model, as ``cl_ssl.strategy_run.build_model`` builds it.

    Composed here from the same registries so this row does not import Avalanche (its
    import costs seconds and memory that would inflate the row's peak RSS).
    """
    from cl_ssl.methods import build_method
    from cl_ssl.models.ssl_model import SSLModel
    from cl_ssl.registry import backbones

    method = build_method("simclr")
    backbone = backbones.get(config.backbone)(config.image_size)
    head = method.make_head(backbone.feature_dim)
    return SSLModel(backbone, head, method.make_predictor()), method


ROWS = {
    "loop-lightly": loop_lightly,
    "loop-batched": loop_batched,
    "data": lambda c, s, d, w: data_pipeline(c, s, d, w, "memory"),
    "data-device": data_device,
    "data-disk": lambda c, s, d, w: data_pipeline(c, s, d, w, "disk"),
    "step": model_step,
}
"""Row name -> ``fn(config, source, device, stopwatch) -> extra fields``."""
