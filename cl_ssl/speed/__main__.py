"""``python -m cl_ssl.speed``: print the speed table; ``--row NAME`` runs one row (a child)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cl_ssl  # noqa: F401  (silences third-party warnings before they are imported)
from cl_ssl.speed import SpeedConfig, format_report, run_speed, write_report
from cl_ssl.speed.config import DEFAULT_DATA_ROOT, DEFAULT_ROWS
from cl_ssl.speed.run import MARKER, run_row


def parser() -> argparse.ArgumentParser:
    """Flags map one to one onto :class:`SpeedConfig` fields."""
    defaults = SpeedConfig()
    p = argparse.ArgumentParser(prog="python -m cl_ssl.speed", description=__doc__)
    p.add_argument("--backbone", default=defaults.backbone)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--image-size", type=int, default=defaults.image_size)
    p.add_argument("--device", default=defaults.device, help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--windows", type=int, default=defaults.windows)
    p.add_argument("--steps", type=int, default=defaults.steps, help="steps per window")
    p.add_argument("--warmup", type=int, default=defaults.warmup)
    p.add_argument("--first-experience-steps", type=int, default=defaults.first_experience_steps)
    p.add_argument("--rows", default=",".join(DEFAULT_ROWS), help="comma-separated rows")
    p.add_argument("--data", default=defaults.data, help="auto, cifar10 or synthetic")
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    p.add_argument("--pool-size", type=int, default=defaults.pool_size)
    p.add_argument("--storage", default=defaults.storage, help="memory or disk")
    p.add_argument("--workers", type=int, default=None, help="per-image loader workers")
    p.add_argument("--precision", default=defaults.precision, help="auto, fp32 or bf16")
    p.add_argument(
        "--channels-last", default="auto", help="on, off or auto (cl-ssl's rows; auto: CUDA)"
    )
    p.add_argument("--opt", action="append", default=[], help="STRATEGY.KEY=VALUE")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--out", type=Path, default=None, help="write the table (.csv or .json)")
    p.add_argument("--row", help=argparse.SUPPRESS)  # child mode: run one row, print JSON
    p.add_argument("--config", help=argparse.SUPPRESS)
    return p


def parse_switch(value: str, flag: str) -> bool | None:
    """``on`` / ``off`` / ``auto`` -> True / False / None."""
    choices = {"on": True, "off": False, "auto": None}
    if value not in choices:
        raise ValueError(f"{flag} must be on, off or auto, got '{value}'")
    return choices[value]


def config_from_args(args: argparse.Namespace) -> SpeedConfig:
    """The :class:`SpeedConfig` the flags describe."""
    options = {}
    if args.opt:
        from cl_ssl.strategy import parse_option_flags

        options = parse_option_flags(args.opt)
    return SpeedConfig(
        backbone=args.backbone,
        batch_size=args.batch_size,
        image_size=args.image_size,
        device=args.device,
        threads=args.threads,
        windows=args.windows,
        steps=args.steps,
        warmup=args.warmup,
        first_experience_steps=args.first_experience_steps,
        rows=tuple(r.strip() for r in args.rows.split(",") if r.strip()),
        data=args.data,
        data_root=args.data_root,
        pool_size=args.pool_size,
        storage=args.storage,
        workers=args.workers,
        precision=args.precision,
        channels_last=parse_switch(args.channels_last, "--channels-last"),
        strategy_options=options,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run, print; bad input: one ``error:`` line and status 2."""
    args = parser().parse_args(argv)
    if args.row:
        result = run_row(args.row, SpeedConfig.from_json(args.config))
        print(MARKER + json.dumps(result), flush=True)
        return 0
    try:
        config = config_from_args(args)
        if args.out is not None and args.out.suffix not in (".csv", ".json"):
            raise ValueError(f"--out {args.out}: write a .csv or .json file")
        report = run_speed(config, log=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, FileNotFoundError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.out:
        write_report(report, args.out)
    return 1 if any("error" in row for row in report.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
