"""examples/gpu_check.sh's helper: the machine's description, the bench comparison, the report.

    python examples/gpu_check_report.py env OUT        # OUT/environment.json
    python examples/gpu_check_report.py compare A B OUT DEVICE  # OUT/compare.json; 1: unequal
    python examples/gpu_check_report.py report OUT     # OUT/report.md and OUT/report.json

Standard library only (``env`` imports torch), so a report is written even when cl-ssl or
pandas cannot be imported: a failed step is a row of the report, never a missing report.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

SPEED_COLUMNS = (
    ("row", "row"),
    ("images_per_s", "images/s"),
    ("s_per_step", "s/step"),
    ("warmup_s", "warm-up s"),
    ("peak_gpu_mb", "peak GPU MB"),
    ("peak_rss_mb", "peak RSS MB"),
)
# Counts that a torchrun run of one process must reproduce exactly (it is the same run:
# cl_ssl.distributed is the identity below two processes).
SAME_COUNTS = ("steps", "images_seen", "images_per_step")


def environment(out: Path) -> None:
    """Python, torch, CUDA, the GPU and the versions of cl-ssl's imports, as JSON."""
    import importlib.metadata as metadata
    import platform

    import torch

    info = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_count": __import__("os").cpu_count(),
    }
    for name in ("torchvision", "avalanche-lib", "lightly", "kornia", "numpy", "pandas",
                 "scikit-learn", "typer", "wandb"):  # fmt: skip
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    try:
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=60)
        info["nvidia_smi"] = smi.stdout
    except (OSError, subprocess.TimeoutExpired) as error:
        info["nvidia_smi"] = f"not available: {error}"
    (out / "environment.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps({k: v for k, v in info.items() if k != "nvidia_smi"}, indent=2))


def seed_dir(run: Path) -> Path:
    """The single strategy/seed folder of a bench run directory."""
    found = sorted(p.parent for p in run.glob("*/seed*/results.json"))
    if len(found) != 1:
        raise SystemExit(f"{run}: expected one */seed*/results.json, found {len(found)}")
    return found[0]


def read_metrics(folder: Path) -> dict[tuple[str, str, str], float]:
    with open(folder / "metrics.csv", newline="") as file:
        return {
            (r["metric"], r["train_exp"], r["eval_exp"]): float(r["value"])
            for r in csv.DictReader(file)
        }


def compare(plain: Path, launched: Path, out: Path, device: str) -> int:
    """The plain bench against the torchrun one; 0 when they agree as they should.

    Must agree: the counts of :data:`SAME_COUNTS`, the set of metrics, and every metric of
    the evaluation before training (``train_exp`` -1: same seed, same initial weights).
    After training the values are reported, not required equal: on CUDA, cuDNN's kernels
    are not bitwise deterministic. ``tolerance`` is 1e-6 on the CPU and 1e-3 on CUDA.
    """
    a, b = seed_dir(plain), seed_dir(launched)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    tolerance = 1e-3 if device == "cuda" else 1e-6
    ma, mb = read_metrics(a), read_metrics(b)
    problems = [f"{key}: {ra.get(key)} vs {rb.get(key)}" for key in SAME_COUNTS
                if ra.get(key) != rb.get(key)]  # fmt: skip
    if set(ma) != set(mb):
        problems.append(f"metrics differ: {sorted(set(ma) ^ set(mb))[:5]}")
    before = [k for k in ma if k[1] == "-1" and k in mb]
    worst_before = max((abs(ma[k] - mb[k]) for k in before), default=0.0)
    if worst_before > tolerance:
        problems.append(f"before training: max |difference| {worst_before:.3g} > {tolerance}")
    after = [k for k in ma if k[1] != "-1" and k in mb]
    worst_after = max((abs(ma[k] - mb[k]) for k in after), default=0.0)
    result = {
        "plain": str(a),
        "torchrun": str(b),
        "tolerance": tolerance,
        "before_training_max_abs_diff": worst_before,
        "after_training_max_abs_diff": worst_after,
        "metrics_compared": len(before) + len(after),
        "problems": problems,
    }
    (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 1 if problems else 0


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    def cell(v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
        return str(v).replace("|", "/").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def bench_cost(run: Path) -> dict | None:
    """Training against evaluation seconds of a bench run, per experience."""
    try:
        results = json.loads((seed_dir(run) / "results.json").read_text())
    except (SystemExit, OSError, ValueError):
        return None
    n = results.get("experiences") or 1
    n = n if isinstance(n, int) else len(n)
    train, evaluation = results["train_seconds"], results["eval_seconds"]
    return {
        "experiences": n,
        "train_s": train,
        "eval_s": evaluation,  # n + 1 evaluations: before training and after each experience
        "train_s_per_experience": train / n,
        "eval_s_per_evaluation": evaluation / (n + 1),
        "representation_eval_s": results.get("representation_eval_seconds"),
        "eval_over_train": evaluation / train if train else None,
        "images_per_second": results.get("images_per_second"),
        "ms_per_step": results.get("ms_per_step"),
        "data_wait_pct": results.get("data_wait_pct"),
    }


def report(out: Path) -> int:
    """report.md and report.json from the step log and every step's files; exit 1 on a failure."""
    steps = []
    with open(out / "steps.tsv") as file:
        for line in file:
            name, status, seconds, note = (line.rstrip("\n").split("\t") + [""] * 4)[:4]
            steps.append({"step": name, "status": status, "seconds": float(seconds), "note": note})
    env = read_json(out / "environment.json") or {}
    speeds = {p.stem: read_json(p) for p in sorted(out.glob("speed-*.json"))}
    costs = {p.name: bench_cost(p) for p in sorted((out / "bench").glob("*")) if p.is_dir()}
    comparison = read_json(out / "compare.json")
    failed = [s["step"] for s in steps if s["status"] == "failed"]
    payload = {
        "environment": env,
        "steps": steps,
        "failed": failed,
        "speed": {k: (v or {}).get("rows") for k, v in speeds.items()},
        "bench_cost": costs,
        "compare": comparison,
    }
    (out / "report.json").write_text(json.dumps(payload, indent=2) + "\n")
    parts = [
        "# GPU check",
        "",
        f"Result: **{'FAILED: ' + ', '.join(failed) if failed else 'all steps passed'}** "
        f"(logs in `logs/`, raw figures in `report.json`).",
        "",
        "## Machine",
        "",
        markdown_table(
            ["key", "value"], [[k, v] for k, v in env.items() if k != "nvidia_smi"]
        ),
        "",
        "```",
        str(env.get("nvidia_smi", "nvidia-smi: not run")).strip(),
        "```",
        "",
        "## Steps",
        "",
        markdown_table(
            ["step", "status", "seconds", "note"],
            [[s["step"], s["status"], round(s["seconds"], 1), s["note"]] for s in steps],
        ),
    ]
    for name, speed in speeds.items():
        parts += ["", f"## {name}", ""]
        if not speed:
            parts.append("(no table: see the step's log)")
            continue
        header = speed.get("header", {})
        parts.append("; ".join(f"{k}: {header.get(k)}" for k in
                               ("device", "backbone", "batch_size", "precision",
                                "channels_last", "compile")))  # fmt: skip
        parts.append("")
        rows = [[r.get(key) if "error" not in r else (r["error"] if key == "row" else None)
                 for key, _ in SPEED_COLUMNS] for r in speed["rows"]]  # fmt: skip
        for r, row in zip(speed["rows"], rows, strict=True):
            if "error" in r:
                row[0] = f"{r['row']}: {r['error']}"
        parts.append(markdown_table([title for _, title in SPEED_COLUMNS], rows))
    parts += ["", "## Evaluation against training (bench)", ""]
    parts.append(
        markdown_table(
            ["run", "train s / experience", "eval s / evaluation", "eval / train",
             "images/s", "data wait %"],  # fmt: skip
            [[name, c["train_s_per_experience"], c["eval_s_per_evaluation"],
              c["eval_over_train"], c["images_per_second"], c["data_wait_pct"]]
             for name, c in costs.items() if c],  # fmt: skip
        )
    )
    if comparison:
        parts += [
            "",
            "## Plain bench against torchrun --nproc_per_node 1",
            "",
            f"Counts ({', '.join(SAME_COUNTS)}), metric set and the evaluation before training "
            f"must agree (tolerance {comparison['tolerance']}); after training the largest "
            f"difference is {comparison['after_training_max_abs_diff']:.3g}. Problems: "
            f"{'; '.join(comparison['problems']) or 'none'}.",
        ]
    (out / "report.md").write_text("\n".join(parts) + "\n")
    print((out / "report.md").read_text())
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["env"]:
        environment(Path(argv[1]))
        return 0
    if argv[:1] == ["compare"]:
        return compare(Path(argv[1]), Path(argv[2]), Path(argv[3]), argv[4])
    if argv[:1] == ["report"]:
        return report(Path(argv[1]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
