"""Checkpoints after each experience: the embedding users keep, and the state to go on.

A checkpoint is one ``torch.save`` file holding the model's weights and what is needed to
rebuild it without the run's config: backbone and method names, input size and the
evaluation preprocessing (resize + normalisation). Since format 2 it also holds the run's
configuration and its full training state (optimizer, strategy plugins, clock, random
states, metrics so far; see :mod:`cl_ssl.state`), which ``clssl bench --resume`` and
``clssl continue`` read back. Everything in it is tensors and plain values, so it loads
with ``torch.load(weights_only=True)`` anywhere, without the run folder. Written
atomically and durably (:func:`cl_ssl.atomic.atomic_write`: temporary file, fsync, rename,
fsync of the folder), so neither a killed run nor a lost machine leaves a half-written
checkpoint, and a full disk is named with the checkpoint's size.

Example:
    >>> encoder = load_encoder("runs/demo/lwf-ssl/checkpoints/exp4.pt")
    >>> features = encoder(uint8_images)          # [B, F], no gradient needed
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from cl_ssl.atomic import write_bytes
from cl_ssl.augment import AugmentConfig, BatchedTwoViewAugment, _EvalView
from cl_ssl.methods import build_method
from cl_ssl.models.ssl_model import SSLModel
from cl_ssl.registry import backbones

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # format 1: weights only
ZIP_MAGIC = b"PK\x03\x04"  # how every torch.save file (a zip archive) begins


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
    path: Path,
    model: SSLModel,
    info: CheckpointInfo,
    augment_config: AugmentConfig,
    training_state: dict | None = None,
    config: dict | None = None,
) -> Path:
    """Write ``model`` and ``info`` (and the training state) to ``path`` atomically, durably.

    Serialized in memory first (one more copy of the checkpoint in RAM), so a full disk
    reports the exact size needed.

    Args:
        path: Destination (``checkpoints/exp<k>.pt``).
        model: The SSL model (backbone + head).
        info: What the checkpoint says about itself.
        augment_config: The preprocessing an encoder applies at inference.
        training_state: :func:`cl_ssl.state.capture`'s dict, for resuming; None writes an
            encoder-only checkpoint.
        config: The run's configuration (JSON-ready), kept as a JSON string.

    Raises:
        cl_ssl.atomic.DiskFull: No space for it; ``path`` (an earlier one) is as before.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "info": asdict(info),
        "augment_config": asdict(augment_config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": None if config is None else json.dumps(config, default=str),
        "training_state": training_state,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(path, buffer.getbuffer(), durable=True)
    return path


def _read(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found: pass a checkpoints/exp<k>.pt file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip or torch errors: all mean "not a checkpoint"
        with path.open("rb") as file:
            head = file.read(len(ZIP_MAGIC))
        if ZIP_MAGIC.startswith(head):  # empty, or torch.save's zip cut short or damaged
            raise ValueError(
                f"{path} is truncated or corrupt ({error.__class__.__name__}): delete it; "
                "`clssl bench --resume` then goes on from the previous checkpoint"
            ) from None
        raise ValueError(
            f"{path} is not a cl-ssl checkpoint ({error.__class__.__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(
            f"{path} is not a cl-ssl checkpoint of format {', '.join(map(str, READABLE_VERSIONS))}"
        )
    return payload


def load_training_state(path: Path) -> tuple[dict, CheckpointInfo, dict]:
    """The training state, info and run configuration a checkpoint carries.

    Raises:
        ValueError: The checkpoint holds weights only (format 1, or written without state).
    """
    payload = _read(path)
    if payload.get("training_state") is None or payload.get("config") is None:
        raise ValueError(
            f"{path} holds the encoder's weights only, not the training state: resume or "
            f"continue from a checkpoint of format {FORMAT_VERSION} (written by `clssl bench`)"
        )
    return (
        payload["training_state"],
        CheckpointInfo(**payload["info"]),
        json.loads(payload["config"]),
    )


def load_model(path: Path) -> tuple[SSLModel, CheckpointInfo, AugmentConfig]:
    """The full SSL model (backbone + head) of a checkpoint, its info and preprocessing."""
    payload = _read(path)
    info = CheckpointInfo(**payload["info"])
    run = json.loads(payload["config"]) if payload.get("config") else {}
    # The method's options shape its heads (projection sizes, a predictor).
    method = build_method(info.method, run.get("train", {}).get("method_options"))
    backbone = backbones.get(info.backbone)(info.image_size)
    head = method.make_head(backbone.feature_dim)
    model = SSLModel(backbone, head, method.make_predictor())
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:  # size mismatch / missing keys: a page of tensor shapes
        first = str(error).strip().splitlines()[-1].strip()[:160]
        raise ValueError(
            f"{path}: its weights do not fit its recorded backbone '{info.backbone}', method "
            f"'{info.method}' at {info.image_size} px ({first}); the file was altered or mixed "
            "up: use a checkpoint exactly as `clssl bench` wrote it"
        ) from None
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
