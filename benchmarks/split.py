"""``split``: class-incremental tasks of any labeled dataset (``--dataset NAME --tasks N``).

The classes are shuffled with ``--split-seed`` and cut into ``--tasks`` near-equal groups; task k
holds the images of group k (from the training split, and the test split when the dataset
has one, else a 90/10 split seeded by ``--split-seed``). Any registry dataset or ImageFolder
path works, e.g.
``--dataset cifar10 --data-root ../shared/data/cifar10``, ``--dataset fashion-mnist`` or
``--dataset cifar100 --data-root ROOT --tasks 10`` (ten tasks of ten classes).
``--image-size`` resizes (default: the dataset's own size).
"""

from __future__ import annotations

import torch

from cl_ssl.data.resolve import harmonise, load_dataset
from cl_ssl.registry import register_stream
from cl_ssl.streams import (
    ExperienceData,
    SSLStream,
    StreamOptions,
    class_groups,
    make_stream,
    select_classes,
)


def class_order(classes: list[int], seed: int) -> list[int]:
    """``classes`` in a fixed, seed-dependent order."""
    generator = torch.Generator().manual_seed(seed)
    return [classes[i] for i in torch.randperm(len(classes), generator=generator).tolist()]


@register_stream("split")
def split(options: StreamOptions) -> SSLStream:
    """--tasks class-incremental tasks of --dataset, class order fixed by --split-seed."""
    if not options.dataset:
        raise ValueError("split needs --dataset NAME (e.g. cifar10, fashion-mnist, digits)")
    data = load_dataset(options.dataset, options.data_root)
    if not data.train.is_labeled:
        raise ValueError(f"split needs labels: dataset '{options.dataset}' has none")
    size = options.image_size or data.train.image_size
    channels = data.train.channels
    train = harmonise(data.train, size, channels)
    test = None if data.test is None else harmonise(data.test, size, channels)
    order = class_order(sorted(set(train.labels.tolist())), options.split_seed)
    names = train.label_names
    experiences = []
    for group in class_groups(len(order), options.tasks):
        classes = [order[i] for i in group]
        title = "+".join(names[c] if c < len(names) else str(c) for c in classes)
        experiences.append(
            ExperienceData(
                title,
                select_classes(train, classes),
                None if test is None else select_classes(test, classes),
            )
        )
    return make_stream("split", experiences, size, options, skipped_images=data.skipped)
