"""``cifar10-split``: CIFAR-10 in five tasks of two classes (airplane+automobile, ...).

Reads ``--data-root`` in ImageFolder layout (``ROOT/{train,test}/<class>/*.jpg``, e.g.
``../shared/data/cifar10``), or a packed sample (``--data-root gpu-carry/cifar10-small.npz``,
written by ``examples/gpu_data.py``), and uses CIFAR-10's own test split for each task. The classes
keep their sorted-folder order, the usual order of Split CIFAR-10. ``--max-images`` caps
each task's training images (its test set gets a ninth of the cap; both drawn by
``--split-seed``) for CPU runs.
"""

from __future__ import annotations

from cl_ssl.data.image_folder import load_cifar10
from cl_ssl.registry import register_stream
from cl_ssl.streams import (
    ExperienceData,
    SSLStream,
    StreamOptions,
    class_groups,
    make_stream,
    select_classes,
)

TASKS = 5


@register_stream("cifar10-split")
def cifar10_split(options: StreamOptions) -> SSLStream:
    """Five two-class tasks of CIFAR-10 with its official test split."""
    data = load_cifar10(options.data_root)
    names = data.train.label_names
    experiences = []
    for group in class_groups(len(names), TASKS):
        experiences.append(
            ExperienceData(
                "+".join(names[c] for c in group),
                select_classes(data.train, group),
                select_classes(data.test, group),
            )
        )
    size = options.image_size or 32
    return make_stream("cifar10-split", experiences, size, options, skipped_images=data.skipped)
