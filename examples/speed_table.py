"""Speed benchmark: training images/s per backbone and augmentation path, as a table.

One SimCLR step = augment a uint8 batch into two views, forward, NT-Xent, backward, step.
Run: .venv/bin/python examples/speed_table.py [--batch-size 256] [--steps 5] [--size 32]
"""

import argparse
import time

import pandas as pd
import torch

from cl_ssl.augment import AugmentConfig, make_augment
from cl_ssl.bench import build_model
from cl_ssl.config import TrainConfig

parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=256)
parser.add_argument("--steps", type=int, default=5)
parser.add_argument("--size", type=int, default=32)
parser.add_argument("--backbones", default="small_resnet,small_resnet_wide")
args = parser.parse_args()

images = torch.randint(0, 256, (args.batch_size, 3, args.size, args.size), dtype=torch.uint8)
rows = []
for backbone in args.backbones.split(","):
    model, method = build_model(TrainConfig(backbone=backbone), args.size)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    for kind in ("none", "batched", "lightly"):
        augment = make_augment("batched" if kind == "none" else kind, AugmentConfig(args.size))
        fixed = augment(images)
        timings = []
        for step in range(args.steps + 2):
            start = time.perf_counter()
            views = fixed if kind == "none" else augment(images)
            loss = method.loss(model(views).projections)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= 2:  # the first steps warm up allocators and kernels
                timings.append(time.perf_counter() - start)
        per_step = sum(timings) / len(timings)
        rows.append(
            {
                "backbone": backbone,
                "augment": kind,
                "images/s": round(args.batch_size / per_step, 1),
                "s/step": round(per_step, 3),
            }
        )
table = pd.DataFrame(rows)
base = table[table.augment == "none"].set_index("backbone")["s/step"]
table["overhead vs none"] = [
    f"{(r['s/step'] / base[r['backbone']] - 1) * 100:+.0f}%" for _, r in table.iterrows()
]
print(f"torch threads: {torch.get_num_threads()}, batch {args.batch_size}, {args.size}px")
print(table.to_markdown(index=False))
