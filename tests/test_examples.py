"""The examples work as documented."""

import shutil
import sys
from pathlib import Path

import pytest

from cl_ssl import strategies as strategy_package
from cl_ssl.bench import run_bench
from cl_ssl.registry import strategies as strategy_registry

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_custom_strategy_dropped_into_strategies_runs_with_no_other_edit(
    tmp_path, monkeypatch, tiny_bench
):
    strategy_registry.discover()  # the copy below must hold the built-in strategies
    shutil.copy(EXAMPLES / "custom_strategy.py", tmp_path / "l2_anchor.py")
    path = [*strategy_package.__path__, str(tmp_path)]
    monkeypatch.setattr(strategy_package, "__path__", path)
    monkeypatch.setattr(strategy_registry, "_entries", dict(strategy_registry._entries))
    monkeypatch.setattr(strategy_registry, "_index", None)  # restored after: l2-anchor leaves
    monkeypatch.delitem(sys.modules, "cl_ssl.strategies.l2_anchor", raising=False)
    strategy_registry.discover(force=True)
    try:
        config = tiny_bench("naive,l2-anchor")
        config.strategy_options["l2-anchor"] = {"weight": "10"}
        naive, anchored = run_bench(config).strategies
        # Identical until the anchor exists, different after.
        assert naive.loss_matrix.iloc[:1].equals(anchored.loss_matrix.iloc[:1])
        assert not naive.loss_matrix.iloc[1:].equals(anchored.loss_matrix.iloc[1:])
    finally:
        sys.modules.pop("cl_ssl.strategies.l2_anchor", None)


def jpeg_tree(root: Path, per_class: int = 5) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.jpg")
    return root


def test_big_manifest_repeats_the_frames_into_one_readable_period(tmp_path):
    import subprocess

    from cl_ssl.registry import streams
    from cl_ssl.streams import StreamOptions

    source = jpeg_tree(tmp_path / "source")
    script = [sys.executable, str(EXAMPLES / "make_big_manifest.py")]
    args = ["--source", str(source), "--out", str(tmp_path / "big"), "--frames", "250"]
    subprocess.run([*script, *args, "--size", "12"], check=True, capture_output=True)
    assert len(list((tmp_path / "big" / "frames").glob("*.jpg"))) == 10
    options = StreamOptions(manifest=tmp_path / "big" / "manifest.csv", image_size=8)
    stream = streams.get("twitch-periods")(options)
    (period,) = stream.experiences
    assert len(period.train) + len(period.test) == 250 and stream.is_labeled
    assert period.train[0][0].shape == (3, 8, 8)


def test_decode_speed_prints_one_row_per_decoder(tmp_path):
    import subprocess

    source = jpeg_tree(tmp_path / "source")
    script = [sys.executable, str(EXAMPLES / "decode_speed.py"), "--root", str(source)]
    out = subprocess.run([*script, "--count", "6"], check=True, capture_output=True, text=True)
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 5 and all(float(r.split("|")[2]) > 0 for r in rows)


def test_learning_and_forgetting_reads_learned_and_drop_from_the_matrix(tmp_path):
    import subprocess

    import pandas as pd

    # b = untrained, then R after experiences 0, 1, 2 (all-classes linear).
    matrix = {
        -1: [0.20, 0.60, 0.80],
        0: [0.35, 0.62, 0.80],
        1: [0.30, 0.70, 0.81],
        2: [0.27, 0.69, 0.90],
    }
    rows = [
        {
            "strategy": "naive",
            "seed": 0,
            "metric": "all_linear",
            "train_exp": i,
            "eval_exp": j,
            "value": v,
        }
        for i, values in matrix.items()
        for j, v in enumerate(values)
    ]
    csv = tmp_path / "runs" / "b" / "naive" / "seed0" / "metrics.csv"
    csv.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(csv, index=False)
    script = [sys.executable, str(EXAMPLES / "study" / "learning_and_forgetting.py"), str(csv)]
    out = subprocess.run(script, check=True, capture_output=True, text=True).stdout
    (row,) = [line for line in out.splitlines() if "| naive" in line]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[4] == "+0.150 +0.100 +0.100"  # R[j][j] - b[j]
    assert float(cells[5]) == pytest.approx(0.35 / 3, abs=1e-3)
    assert cells[6] == "+0.080 +0.010"  # R[j][j] - R[2][j], earlier experiences only
    assert float(cells[7]) == pytest.approx(0.045, abs=1e-3)
