"""Backbones (registered by name) and the SSL embedding model."""

from cl_ssl.models.backbones import SmallResNet
from cl_ssl.models.ssl_model import SSLModel, SSLOutput

__all__ = ["SSLModel", "SSLOutput", "SmallResNet"]
