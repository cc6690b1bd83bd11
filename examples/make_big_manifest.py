"""A 150k-frame manifest for the memory target: CIFAR-10 JPEGs at 64 px, repeated.

Writes each CIFAR-10 training image once, resized to 64 px, under ``OUT/frames/`` and a
manifest of ``--frames`` rows cycling over them (one period of frames by default, 100 frames
per synthetic VOD, categories from the class folders). Nothing here is committed; the
manifest is what `clssl bench --stream twitch-periods` reads:

    python examples/make_big_manifest.py --source ../shared/data/cifar10/train --out /tmp/big
    /usr/bin/time -v clssl bench --stream twitch-periods --manifest /tmp/big/manifest.csv \\
        --image-size 64 --epochs 1 --strategy naive --eval-protocols none --no-progress
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="ImageFolder tree")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=150_000)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    sources = sorted(args.source.glob("*/*.jpg"))
    if not sources:
        raise SystemExit(f"no */*.jpg under {args.source}: pass an ImageFolder tree")
    (args.out / "frames").mkdir(parents=True, exist_ok=True)

    def resize(index: int) -> str:
        target = args.out / "frames" / f"{index:06d}.jpg"
        if not target.exists():
            with Image.open(sources[index]) as image:
                image.convert("RGB").resize((args.size, args.size), Image.Resampling.BICUBIC).save(
                    target, quality=90
                )
        return f"frames/{target.name}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        names = list(pool.map(resize, range(len(sources)), chunksize=256))
    rows = pd.DataFrame({"frame": range(args.frames)})
    rows["path"] = [names[i % len(names)] for i in rows.frame]
    rows["category"] = [sources[i % len(sources)].parent.name for i in rows.frame]
    rows["vod_id"] = [f"vod-{i // 100}" for i in rows.frame]
    start = pd.Timestamp("2024-01-01", tz="UTC")
    rows["timestamp"] = [(start + pd.Timedelta(seconds=int(i))).isoformat() for i in rows.frame]
    rows.drop(columns="frame").to_csv(args.out / "manifest.csv", index=False)
    print(f"{args.frames:,} frames ({len(names):,} distinct) -> {args.out / 'manifest.csv'}")


if __name__ == "__main__":
    main()
