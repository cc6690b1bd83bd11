"""Checkpoints of the embedding after each experience, and the one-call loader.

A checkpoint is one ``torch.save`` file holding the model's weights and what is needed to
rebuild it without the run's config: backbone and method names, input size and the
evaluation preprocessing (resize + normalisation). Written atomically (temporary file, then
rename), so a stopped run never leaves a half-written checkpoint.

Example:
    >>> encoder = load_encoder("runs/demo/lwf-ssl/checkpoints/exp4.pt")
    >>> features = encoder(uint8_images)          # [B, F], no gradient needed
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from cl_ssl.augment import AugmentConfig, BatchedTwoViewAugment, _EvalView
from cl_ssl.models.ssl_model import SSLModel
from cl_ssl.registry import backbones, methods

FORMAT_VERSION = 1


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about itself."""

    backbone: str
    method: str
    image_size: int
    strategy: str
    experience: int
    seed: int


def save_checkpoint(
    path: Path, model: SSLModel, info: CheckpointInfo, augment_config: AugmentConfig
) -> Path:
    """Write ``model`` and ``info`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "info": asdict(info),
        "augment_config": asdict(augment_config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)
    return path


def _read(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found: pass a checkpoints/exp<k>.pt file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip or torch errors: all mean "not a checkpoint"
        raise ValueError(
            f"{path} is not a cl-ssl checkpoint ({error.__class__.__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a cl-ssl checkpoint of format {FORMAT_VERSION}")
    return payload


def load_model(path: Path) -> tuple[SSLModel, CheckpointInfo, AugmentConfig]:
    """The full SSL model (backbone + head) of a checkpoint, its info and preprocessing."""
    payload = _read(path)
    info = CheckpointInfo(**payload["info"])
    method = methods.get(info.method)()
    backbone = backbones.get(info.backbone)(info.image_size)
    model = SSLModel(backbone, method.make_head(backbone.feature_dim))
    model.load_state_dict(payload["state_dict"])
    config = payload["augment_config"]
    augment_config = AugmentConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    )
    return model.eval(), info, augment_config


class Encoder(nn.Module):
    """A trained backbone with its preprocessing: uint8 images in, features out.

    Attributes:
        info: Where the weights come from (strategy, experience, backbone, ...).
    """

    def __init__(self, backbone: nn.Module, augment_config: AugmentConfig, info: CheckpointInfo):
        super().__init__()
        self.backbone = backbone
        self.preprocess: _EvalView = BatchedTwoViewAugment(augment_config)
        self.info = info

    @property
    def feature_dim(self) -> int:
        return int(self.backbone.feature_dim)

    def forward(self, images: Tensor) -> Tensor:
        """uint8 ``[B, C, H, W]`` (any size; C = 1 or 3) -> features ``[B, F]``."""
        return self.backbone(self.preprocess.eval_view(images))


def load_encoder(path: Path | str) -> Encoder:
    """The embedding users keep, from one checkpoint, in eval mode."""
    model, info, augment_config = load_model(Path(path))
    return Encoder(model.backbone, augment_config, info).eval()
