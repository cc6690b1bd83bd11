"""Pack a CIFAR-10 sample into one .npz file that travels to a machine without ../shared.

    python examples/gpu_data.py                       # gpu-carry/cifar10-small.npz
    python examples/gpu_data.py --train-per-class 50 --test-per-class 20 --out tiny.npz

Reads ``ROOT/{train,test}/<class>/*.jpg`` (CIFAR-10 as JPEGs, ../shared/data/cifar10) and
keeps ``--train-per-class`` training and ``--test-per-class`` test images of every class,
drawn by ``--seed`` (a seeded permutation of each class's sorted file names), decoded at
32 px into uint8 arrays (cl_ssl/data/npz.py's layout). The same arguments write the same
arrays. Any reader of CIFAR-10 takes the file: ``clssl bench --stream cifar10-split
--data-root gpu-carry/cifar10-small.npz``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cl_ssl.data.datasets import LoadedDataset
from cl_ssl.data.image_folder import load_cifar10
from cl_ssl.data.npz import load_npz, save_npz


def balanced_sample(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of ``per_class`` items of every label, seeded, in ascending order."""
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for label in labels.unique(sorted=True).tolist():
        members = (labels == label).nonzero().flatten()
        if len(members) < per_class:
            raise SystemExit(f"class {label} has {len(members)} images, fewer than {per_class}")
        picked.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(picked).sort().values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/data/cifar10"))
    parser.add_argument("--out", type=Path, default=Path("gpu-carry/cifar10-small.npz"))
    parser.add_argument("--train-per-class", type=int, default=600)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_cifar10(args.root)
    train = data.train.subset(balanced_sample(data.train.labels, args.train_per_class, args.seed))
    test = data.test.subset(balanced_sample(data.test.labels, args.test_per_class, args.seed))
    save_npz(args.out, LoadedDataset(train, test))
    packed = load_npz(args.out)
    mib = args.out.stat().st_size / 2**20
    print(
        f"{args.out}: {len(packed.train)} train + {len(packed.test)} test images "
        f"{tuple(packed.train.images.shape[1:])}, {len(packed.train.label_names)} classes, "
        f"{mib:.1f} MiB"
    )


if __name__ == "__main__":
    main()
