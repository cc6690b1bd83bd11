"""SSL methods (head + loss + augmentation defaults), registered by name."""

from cl_ssl.methods.base import SSLMethod

__all__ = ["SSLMethod"]
