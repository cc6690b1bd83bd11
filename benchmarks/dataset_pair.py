"""``pair``: unrelated datasets in sequence, one experience each (the seed's ImageNet->CelebA).

``--datasets cifar10=../shared/data/cifar10,fashion-mnist``: names from the dataset
registry (``clssl list``) or ImageFolder paths, each optionally ``=ROOT`` (else
``--data-root``, else the dataset's default location). Two or more are allowed.

Harmonisation: every image is resized (antialiased) to ``--image-size`` (default 32) and,
if any dataset is in colour, grayscale ones are repeated to RGB, so all experiences share
one input format (and one replay buffer can hold them). Datasets without a test split get a
90/10 split seeded by ``--split-seed`` (as are the ``--max-images`` caps); labels are kept
per dataset for evaluation only.
"""

from __future__ import annotations

from pathlib import Path

from cl_ssl.data.resolve import harmonise, load_dataset
from cl_ssl.registry import datasets, register_stream
from cl_ssl.streams import ExperienceData, SSLStream, StreamOptions, make_stream

DEFAULT_IMAGE_SIZE = 32


def parse_dataset_specs(
    text: str | None, default_root: Path | None
) -> list[tuple[str, Path | None]]:
    """``"cifar10=ROOT,fashion-mnist"`` -> [("cifar10", ROOT), ("fashion-mnist", default_root)].

    ``NAME=ROOT`` takes a registry name; a folder is given as a bare path, so ``a=DIR`` with
    an unknown ``a`` is refused here, before any dataset is read.
    """
    parts = [p.strip().partition("=") for p in (text or "").split(",") if p.strip()]
    unknown = [(name, root) for name, sep, root in parts if sep and name not in datasets]
    if unknown:
        name, root = unknown[0]
        bare = ",".join(root if (name, root) in unknown else name for name, _, root in parts)
        raise ValueError(
            f"--datasets {name}={root}: NAME=ROOT takes a registered dataset name "
            f"({', '.join(datasets.names())}), not '{name}'; give a folder as a bare path: "
            f"--datasets {bare}"
        )
    specs = [(name, Path(root) if sep else default_root) for name, sep, root in parts]
    return specs


@register_stream("pair")
def dataset_pair(options: StreamOptions) -> SSLStream:
    """Two or more datasets in sequence (--datasets A,B), resolution and channels harmonised."""
    specs = parse_dataset_specs(options.datasets, options.data_root)
    if len(specs) < 2:
        raise ValueError("pair needs --datasets A,B (two or more), e.g. cifar10=ROOT,fashion-mnist")
    loaded = [(name, load_dataset(name, root)) for name, root in specs]
    size = options.image_size or DEFAULT_IMAGE_SIZE
    channels = max(data.train.channels for _, data in loaded)
    experiences = [
        ExperienceData(
            Path(name).name,
            harmonise(data.train, size, channels),
            None if data.test is None else harmonise(data.test, size, channels),
            domain=name,
        )
        for name, data in loaded
    ]
    skipped = sum(data.skipped for _, data in loaded)
    return make_stream("pair", experiences, size, options, skipped_images=skipped)
