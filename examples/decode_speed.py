"""Decode throughput of image files, one core: why cl-ssl decodes with PIL.

Reads ``--count`` JPEGs of an ImageFolder tree once (so they are in the page cache), then
times, single-threaded, median of 3 passes: the file-header check that indexing does
(``readable_header``), cl-ssl's decoder (``decode_file``: PIL, RGB, resize to ``--size``),
plain PIL decoding, and torchvision's ``decode_jpeg`` one file at a time and as one batched
call. Prints a markdown table of images/s.

    python examples/decode_speed.py --root ../shared/data/cifar10/train --size 32
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision.io import decode_jpeg, read_file

from cl_ssl.data.files import decode_file, readable_header


def images_per_second(run: Callable[[], object], count: int, repeats: int = 3) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return count / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/data/cifar10/train"))
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    paths = sorted(args.root.glob("*/*.jp*g"))[: args.count]
    if not paths:
        raise SystemExit(f"no JPEGs under {args.root}/<class>/: pass --root")
    torch.set_num_threads(1)
    raw = [read_file(str(p)) for p in paths]  # also warms the page cache

    def pil() -> None:
        for p in paths:
            with Image.open(p) as image:
                np.asarray(image.convert("RGB"))

    cases = {
        "header check (indexing)": lambda: [readable_header(p) for p in paths],
        f"cl-ssl decode_file (PIL, resize to {args.size})": lambda: [
            decode_file(p, args.size) for p in paths
        ],
        "PIL decode": pil,
        "torchvision decode_jpeg, per file": lambda: [decode_jpeg(r) for r in raw],
        "torchvision decode_jpeg, one batched call": lambda: decode_jpeg(raw),
    }
    rows = [
        {"operation": name, "images/s (1 thread)": round(images_per_second(run, len(paths)))}
        for name, run in cases.items()
    ]
    with Image.open(paths[0]) as first:
        print(f"{len(paths)} JPEGs of {args.root} ({first.size[0]} px), 1 thread")
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
