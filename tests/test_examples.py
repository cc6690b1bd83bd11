"""The examples work as documented."""

import shutil
import sys
from pathlib import Path

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
