"""cl-ssl: continual self-supervised learning of image embeddings on Avalanche."""

import warnings

from cl_ssl import lean_imports

lean_imports.install()  # before anything imports avalanche: saves ~1.3 s per process

# Third-party noise only, matched by message or module so our own warnings still show.
warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
warnings.filterwarnings("ignore", message="No loggers specified", category=UserWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"avalanche(\.|$)")
warnings.filterwarnings(
    "ignore", message=".*named \\(keyword\\) arguments only", module="avalanche"
)

__version__ = "0.1.0"
