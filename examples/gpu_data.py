"""Pack CIFAR-10 into one file that travels to a machine without ../shared (the GPU's).

    python examples/gpu_data.py --pack                # gpu-carry/cifar10-jpeg.tar.gz
    python examples/gpu_data.py --unpack gpu-carry/cifar10-jpeg.tar.gz --to /tmp/data
    python examples/gpu_data.py                       # gpu-carry/cifar10-small.npz
    python examples/gpu_data.py --train-per-class 50 --test-per-class 20 --out tiny.npz

Reads ``ROOT/{train,test}/<class>/*.jpg`` (CIFAR-10 as JPEGs, ../shared/data/cifar10).
``--pack`` keeps the JPEG files themselves, byte for byte: by default all of CIFAR-10
(60,000 files, 54 MiB; 18 MiB packed, as the files share their JPEG tables; decoded, the
training split alone would be 154 MB), else ``--train-per-class`` / ``--test-per-class``
images of every class, in one gzip-compressed tar of ``cifar10/{train,test}/<class>/<file>``.
Names are sorted and mtime, owner and mode fixed (gzip's mtime 0), so the same arguments
and files write the same bytes. ``--unpack`` recreates that folder tree under ``--to``, where every
stream reads it as it reads ../shared (``--data-root DIR/cifar10``, ``clssl drift
DIR/cifar10/train``). Without ``--pack``, ``--train-per-class`` and ``--test-per-class``
images of every class are decoded at 32 px into uint8 arrays (cl_ssl/data/npz.py's layout).
Both draw a class's images by ``--seed``: a seeded permutation of its sorted file names.
"""

from __future__ import annotations

import argparse
import gzip
import io
import tarfile
from pathlib import Path


def balanced_sample(labels, per_class: int, seed: int):
    """Indices of ``per_class`` items of every label (a tensor), seeded, in ascending order."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    picked = []
    for label in labels.unique(sorted=True).tolist():
        members = (labels == label).nonzero().flatten()
        if len(members) < per_class:
            raise SystemExit(f"class {label} has {len(members)} images, fewer than {per_class}")
        picked.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(picked).sort().values


def jpeg_files(split: Path, per_class: int | None, seed: int) -> list[Path]:
    """The split's image files in sorted order; ``per_class`` of each class if given."""
    files = sorted(p for p in split.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if per_class is None:
        return files
    import torch

    classes = sorted({p.parent.name for p in files})
    labels = torch.tensor([classes.index(p.parent.name) for p in files])
    return [files[i] for i in balanced_sample(labels, per_class, seed).tolist()]


def pack(root: Path, out: Path, per_class: tuple[int | None, int | None], seed: int) -> int:
    """Write the tar of ``root``'s (train, test) files (``per_class`` each) to ``out``; count."""
    members = [f for split, n in zip(("train", "test"), per_class, strict=True)
               for f in jpeg_files(root / split, n, seed)]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")  # a cut write never sits at ``out``
    with open(partial, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as zipped:
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for path in members:
                data = path.read_bytes()
                info = tarfile.TarInfo(f"cifar10/{path.relative_to(root).as_posix()}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    partial.replace(out)
    return len(members)


def unpack(packed: Path, to: Path) -> int:
    """Extract ``packed`` under ``to`` (regular files only, inside ``to``); files extracted."""
    if not packed.is_file():
        raise SystemExit(f"no pack {packed}: write it with python examples/gpu_data.py --pack")
    with tarfile.open(packed, "r:gz") as tar:
        tar.extractall(to, filter="data")
        return len(tar.getmembers())


def pack_npz(args: argparse.Namespace) -> str:
    """Decode the sample into the .npz at ``args.out``; a line describing it."""
    from cl_ssl.data.datasets import LoadedDataset
    from cl_ssl.data.image_folder import load_cifar10
    from cl_ssl.data.npz import load_npz, save_npz

    data = load_cifar10(args.root)
    train = data.train.subset(balanced_sample(data.train.labels, args.train_per_class, args.seed))
    test = data.test.subset(balanced_sample(data.test.labels, args.test_per_class, args.seed))
    save_npz(args.out, LoadedDataset(train, test))
    packed = load_npz(args.out)
    return (
        f"{len(packed.train)} train + {len(packed.test)} test images "
        f"{tuple(packed.train.images.shape[1:])}, {len(packed.train.label_names)} classes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/data/cifar10"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pack", action="store_true", help="pack the JPEG files themselves")
    parser.add_argument("--unpack", type=Path, metavar="PACK", help="extract PACK (needs --to)")
    parser.add_argument("--to", type=Path, help="folder --unpack extracts into")
    every = "default: every image (--pack), %s (npz)"
    parser.add_argument("--train-per-class", type=int, help=every % 600)
    parser.add_argument("--test-per-class", type=int, help=every % 200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.unpack:
        if args.to is None:
            parser.error("--unpack needs --to DIR, the folder to extract into")
        print(f"{args.to}: {unpack(args.unpack, args.to)} files from {args.unpack}")
        return
    if args.pack:
        args.out = args.out or Path("gpu-carry/cifar10-jpeg.tar.gz")
        count = pack(args.root, args.out, (args.train_per_class, args.test_per_class), args.seed)
        note = f"{count} JPEG files"
    else:
        args.out = args.out or Path("gpu-carry/cifar10-small.npz")
        args.train_per_class = args.train_per_class or 600
        args.test_per_class = args.test_per_class or 200
        note = pack_npz(args)
    print(f"{args.out}: {note}, {args.out.stat().st_size / 2**20:.1f} MiB")
    if args.pack:  # what travels with the checkout: this folder (the wheels beside the pack)
        total = sum(f.stat().st_size for f in args.out.parent.rglob("*") if f.is_file())
        print(f"{args.out.parent}: {total / 2**20:.1f} MiB in all, with what lies beside it")


if __name__ == "__main__":
    main()
