"""examples/study/gpu_tier.sh's report, in one process: `clssl report` per stream, learning
and forgetting per run, each run's throughput, and the steps, into OUT/report.md.

    python examples/study/gpu_tier_report.py OUT TITLE NAME=BENCH[,BENCH...] ...

NAME=BENCHES: one `clssl report` over those bench folders of OUT (OUT/reports/NAME/);
learned = R[j][j] - b[j] and drop = R[j][j] - R[T-1][j] per run come from
examples/study/learning_and_forgetting.py, images/s and seconds from each run's
results.json. Exit 1 when a step of OUT/steps.tsv failed or a report could not be made.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import sys
from pathlib import Path

import pandas as pd

from cl_ssl.cli import report

HERE = Path(__file__).resolve().parent


def learning_table(files: list[Path]) -> str:
    """learning_and_forgetting.py's table over ``files`` (metrics.csv of every run)."""
    spec = importlib.util.spec_from_file_location("lf", HERE / "learning_and_forgetting.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = pd.DataFrame([row for path in files for row in module.rows(path)])
    return table.to_markdown(index=False, floatfmt=".3f") if len(table) else "(no finished run)"


def speed_table(files: list[Path]) -> str:
    """Each run's images/s, training and evaluation seconds (what sets the epochs)."""
    rows = []
    for path in files:
        result = json.loads(path.read_text())
        rows.append(
            {
                "bench": path.parts[-4],
                "strategy": path.parts[-3],
                "seed": path.parts[-2],
                "images/s": round(result.get("images_per_second") or 0),
                "train s": round(result["train_seconds"], 1),
                "eval s": round(result["eval_seconds"], 1),
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False) if rows else "(no finished run)"


def main(out: Path, title: str, groups: list[str]) -> int:
    steps = pd.read_csv(
        out / "steps.tsv", sep="\t", names=["step", "status", "seconds", "note"],
        quoting=csv.QUOTE_NONE,
    )  # fmt: skip
    failed = steps.loc[steps.status == "failed", "step"].tolist()
    parts = []
    for group in groups:
        name, benches = group.split("=", 1)
        folders = [out / "runs" / b for b in benches.split(",") if (out / "runs" / b).is_dir()]
        text = io.StringIO()
        try:
            with contextlib.redirect_stdout(text):
                report(folders, out / "reports" / name)
            body = (out / "reports" / name / "report.md").read_text()
        except Exception as error:  # typer.Exit or a refusal: the note says which
            failed.append(f"report {name}")
            body = f"(no report: {error!r} {text.getvalue()[-300:]})"
        parts += [f"## Stream {name}: `clssl report {' '.join(benches.split(','))}`", body]
    runs = sorted((out / "runs").glob("*/*/seed*/"))
    parts = [
        "## Learned and dropped per run (learning_and_forgetting.py)",
        learning_table([r / "metrics.csv" for r in runs if (r / "metrics.csv").is_file()]),
        "## Throughput per run",
        speed_table([r / "results.json" for r in runs if (r / "results.json").is_file()]),
        *parts,
    ]
    steps["note"] = steps["note"].fillna("")
    result = f"FAILED or cut: {', '.join(failed)}" if failed else "all steps passed"
    head = [
        f"# {title}",
        f"Result: **{result}** (logs in `logs/`).",
        steps.to_markdown(index=False),
    ]
    (out / "report.md").write_text("\n\n".join(head + parts) + "\n")
    print(f"report: {out / 'report.md'} ({result})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:]))
