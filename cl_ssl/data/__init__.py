"""Dataset loaders: every loader returns :class:`ImageTensorDataset` objects."""

from cl_ssl.data.images import UNLABELED, ImageTensorDataset

__all__ = ["UNLABELED", "ImageTensorDataset"]
