"""``digits-periods``: scikit-learn's digits as five periods with disjoint content.

Period k holds the digits {2k, 2k+1}, so each period brings images the embedding has never
seen: a real content shift, like the new games of a new streaming period. Built in, tiny
(1,797 images, 8x8 upsampled to 16x16 by the augmentation) and the default of ``make demo``.
Each period is split 90/10 into train and test, deterministically by ``--split-seed`` (the
training seed ``--seed`` never moves the split).

Augmentation: crops keep at least half the image (``min_scale=0.5``; at 8 px SimCLR's 8%
crops leave ~2 pixels and the eval loss stays at chance) and no horizontal flips (a
mirrored digit is not a digit).
"""

from __future__ import annotations

from cl_ssl.data.digits import load_digits_dataset
from cl_ssl.registry import register_stream
from cl_ssl.streams import (
    ExperienceData,
    SSLStream,
    StreamOptions,
    class_groups,
    make_stream,
    select_classes,
)

DEFAULT_IMAGE_SIZE = 16
PERIODS = 5
AUGMENT_OVERRIDES = {"min_scale": 0.5, "hf_prob": 0.0}


@register_stream("digits-periods")
def digits_periods(options: StreamOptions) -> SSLStream:
    """Five periods of two digit classes each, from the bundled digits."""
    digits = load_digits_dataset().train
    experiences = [
        ExperienceData(f"digits {group[0]}-{group[-1]}", select_classes(digits, group))
        for group in class_groups(10, PERIODS)
    ]
    return make_stream(
        "digits-periods",
        experiences,
        options.image_size or DEFAULT_IMAGE_SIZE,
        options,
        AUGMENT_OVERRIDES,
    )
