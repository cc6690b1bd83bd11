"""The examples work as documented."""

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cl_ssl import strategies as strategy_package
from cl_ssl.bench import run_bench
from cl_ssl.registry import strategies as strategy_registry

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def drop_example(example, package, registry, module, monkeypatch, tmp_path) -> None:
    """Copy ``examples/EXAMPLE`` into ``package``'s folder as ``module``, as a user would;
    the registry and the package's path are restored after the test."""
    registry.discover()  # the registry copied below must hold the built-in entries
    shutil.copy(EXAMPLES / example, tmp_path / f"{module}.py")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    monkeypatch.setattr(registry, "_index", None)  # the source index must see the new file
    monkeypatch.setattr(registry, "_discovered", False)
    monkeypatch.delitem(sys.modules, f"{package.__name__}.{module}", raising=False)


def test_custom_strategy_dropped_into_strategies_runs_with_no_other_edit(
    tmp_path, monkeypatch, tiny_bench
):
    drop_example(
        "custom_strategy.py", strategy_package, strategy_registry, "l2_anchor", monkeypatch,
        tmp_path,
    )  # fmt: skip
    try:
        config = tiny_bench("naive,l2-anchor")
        config.strategy_options["l2-anchor"] = {"weight": "10"}
        naive, anchored = run_bench(config).strategies
        # Identical until the anchor exists, different after.
        assert naive.loss_matrix.iloc[:1].equals(anchored.loss_matrix.iloc[:1])
        assert not naive.loss_matrix.iloc[1:].equals(anchored.loss_matrix.iloc[1:])
    finally:
        sys.modules.pop("cl_ssl.strategies.l2_anchor", None)


def test_custom_method_dropped_into_methods_trains_with_no_other_edit(
    tmp_path, monkeypatch, tiny_bench
):
    from cl_ssl import methods as method_package
    from cl_ssl.methods import build_method
    from cl_ssl.registry import methods as method_registry

    drop_example(
        "custom_method.py", method_package, method_registry, "align_uniform", monkeypatch,
        tmp_path,
    )  # fmt: skip
    try:
        # clssl list reads it from the source, options included.
        [entry] = [e for e in method_registry.catalogue() if e.name == "align-uniform"]
        assert ("weight", "float", "1.0") in entry.options
        method = build_method("align-uniform", {"align-uniform": {"weight": "0.5"}})
        # Equal views: no alignment term, the uniformity alone, against a double loop.
        z = torch.nn.functional.normalize(
            torch.randn(6, 8, generator=torch.Generator().manual_seed(0)), dim=1
        )
        pairs = [(i, j) for i in range(6) for j in range(6) if i != j]
        u = math.log(sum(math.exp(-2 * float((z[i] - z[j]).pow(2).sum())) for i, j in pairs) / 30)
        assert method.loss(torch.stack([z, z], 1)).item() == pytest.approx(0.5 * u, rel=1e-5)
        # Antipodal views: |z - (-z)|^2 = 4 for every image; U(-z) = U(z).
        assert method.loss(torch.stack([z, -z], 1)).item() == pytest.approx(4 + 0.5 * u, rel=1e-5)

        narrow = {"align-uniform": {"hidden_dim": "32", "output_dim": "16"}}
        config = tiny_bench("naive,cassle", method="align-uniform", method_options=narrow)
        naive, cassle = run_bench(config).strategies
        assert np.isfinite(naive.loss_matrix.to_numpy()).all()
        # CaSSLe distils with the method's own loss (the default): identical until it has a
        # teacher, different after.
        assert naive.loss_matrix.iloc[:1].equals(cassle.loss_matrix.iloc[:1])
        assert not naive.loss_matrix.iloc[1:].equals(cassle.loss_matrix.iloc[1:])
    finally:
        sys.modules.pop("cl_ssl.methods.align_uniform", None)


def test_custom_metric_dropped_into_evaluation_is_measured_with_no_other_edit(
    tmp_path, monkeypatch, tiny_bench
):
    from cl_ssl import evaluation as evaluation_package
    from cl_ssl.config import EvalConfig, StreamOptions
    from cl_ssl.evaluation import metric_registry
    from cl_ssl.evaluation.features import FeatureSet
    from cl_ssl.evaluation.metrics import representation_scores
    from cl_ssl.registry import streams

    metric_registry.registered()  # the built-in metrics' modules are imported first
    drop_example(
        "custom_metric.py", evaluation_package, metric_registry.metrics, "ncm", monkeypatch,
        tmp_path,
    )  # fmt: skip
    try:
        assert "NCM" in [spec.name for spec in metric_registry.registered()]
        # Class means along x and y; (2, 1) is nearer the x mean although labelled 1.
        train = FeatureSet(
            torch.tensor([[1.0, 0], [1, 0.2], [0, 1], [0.2, 1]]), torch.tensor([0, 0, 1, 1])
        )
        test = FeatureSet(
            torch.tensor([[3.0, 1], [1, 3], [2, 1], [1, 2]]), torch.tensor([0, 1, 1, 1])
        )
        only = EvalConfig(knn_k=(), linear_probe=False, kmeans=False)
        assert representation_scores(train, [test], only)[0] == {"NCM": 0.75}

        run = run_bench(tiny_bench("naive"))
        rows = run.tidy
        mine = rows[rows["metric"] == "all_ncm"]
        assert set(rows["metric"]) >= {"all_ncm", "exp_ncm", "all_knn20"}
        assert mine["value"].between(0, 1).all()
        # The union's accuracy is the split accuracies weighted by the splits' sizes.
        stream = streams.get("digits-periods")(StreamOptions(image_size=8, max_images=40))
        sizes = np.array([len(e.test) for e in stream.experiences])
        last = mine[mine["train_exp"] == mine["train_exp"].max()].set_index("eval_exp")["value"]
        per_split = last.loc[list(range(len(sizes)))].to_numpy()
        assert last.loc[-1] == pytest.approx((per_split * sizes).sum() / sizes.sum(), rel=1e-6)
        summary = run.summary(numeric=True).set_index("strategy")
        assert summary.loc["naive", "final all-classes NCM accuracy"] == pytest.approx(last.loc[-1])
    finally:
        sys.modules.pop("cl_ssl.evaluation.ncm", None)


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
    from scipy import stats

    # b = untrained, then R after experiences 0, 1, 2 (all-classes linear).
    matrix = {
        -1: [0.20, 0.60, 0.80],
        0: [0.35, 0.62, 0.80],
        1: [0.30, 0.70, 0.81],
        2: [0.27, 0.69, 0.90],
    }
    # seed 1: the same, but R[0][0] = 0.45 (first learned 0.25, first drop 0.18)
    csvs = []
    for seed, first in ((0, 0.35), (1, 0.45)):
        rows = [
            {
                "strategy": "naive",
                "seed": seed,
                "metric": "all_linear",
                "train_exp": i,
                "eval_exp": j,
                "value": first if (i, j) == (0, 0) else v,
            }
            for i, values in matrix.items()
            for j, v in enumerate(values)
        ]
        csv = tmp_path / "runs" / f"b-s{seed}" / "naive" / f"seed{seed}" / "metrics.csv"
        csv.parent.mkdir(parents=True)
        pd.DataFrame(rows).to_csv(csv, index=False)
        csvs.append(str(csv))
    script = [sys.executable, str(EXAMPLES / "study" / "learning_and_forgetting.py"), *csvs]
    out = subprocess.run(script, check=True, capture_output=True, text=True).stdout
    run0, _run1, over_seeds = [line for line in out.splitlines() if "| naive" in line]
    cells = [c.strip() for c in run0.split("|")[1:-1]]
    assert cells[4] == "+0.150 +0.100 +0.100"  # R[j][j] - b[j]
    assert float(cells[5]) == pytest.approx(0.35 / 3, abs=1e-3)
    assert cells[6] == "+0.080 +0.010"  # R[j][j] - R[2][j], earlier experiences only
    assert float(cells[7]) == pytest.approx(0.045, abs=1e-3)
    # over the two seeds: first learned 0.15 and 0.25, mean 0.20 with a t-interval (1 dof)
    half = stats.t.ppf(0.975, 1) * np.std([0.15, 0.25], ddof=1) / 2**0.5
    assert f"+0.200 [{0.2 - half:+.3f}, {0.2 + half:+.3f}]" in over_seeds


def test_downstream_pairs_each_encoder_with_its_seeds_naive_and_takes_the_gap_as_a_ratio(
    tmp_path, capsys, monkeypatch
):
    import runpy

    import pandas as pd
    from scipy import stats

    # Seeds 0-2 for naive and joint, replay only in seeds 0 and 1 (paired over those).
    accuracy = {
        "naive": [0.30, 0.32, 0.28],
        "joint": [0.40, 0.38, 0.40],
        "replay": [0.36, 0.34],
    }
    paths = []
    for strategy, values in accuracy.items():
        for seed, value in enumerate(values):
            report = pd.DataFrame(
                {"precision": [value], "recall": [value], "f1-score": [value], "support": [value]},
                index=["accuracy"],
            )  # the accuracy row of `clssl finetune --out` (one value in every column)
            paths.append(tmp_path / f"{strategy}-s{seed}.csv")
            report.to_csv(paths[-1])
    script = str(EXAMPLES / "study" / "downstream.py")
    monkeypatch.setattr(sys, "argv", [script, *map(str, paths)])
    runpy.run_path(script, run_name="__main__")
    rows = {r.split("|")[1].strip(): r for r in capsys.readouterr().out.splitlines()[2:]}
    assert list(rows) == ["joint", "replay", "naive"]  # best mean first
    cells = [c.strip() for c in rows["replay"].split("|")[1:-1]]
    assert cells[1:3] == ["0 / 1", "0.360 / 0.340"]
    half = stats.t.ppf(0.975, 1) * np.std([0.06, 0.02], ddof=1) / 2**0.5
    assert cells[4] == f"+0.040 [{0.04 - half:+.3f}, {0.04 + half:+.3f}]"
    assert cells[5] == f"{0.04 / 0.08:.2f}"  # mean d over seeds 0-1 / mean gap (0.10, 0.06)
    assert [c.strip() for c in rows["naive"].split("|")[5:7]] == ["0", "0"]


def test_eval_speed_times_every_part_of_an_evaluation_and_both_probes(monkeypatch, capsys):
    import runpy

    script = str(EXAMPLES / "eval_speed.py")
    options = ["--datasets", "digits,digits", "--max-images", "300", "--repeats", "1"]
    monkeypatch.setattr(sys, "argv", [script, *options])
    runpy.run_path(script, run_name="__main__")
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert {"features", "probe torch", "probe sklearn (CPU)", "k-means (CPU)"} <= set(rows)
    accuracies = out.split("test accuracy sklearn ")[1].split(", torch ")
    assert abs(float(accuracies[0]) - float(accuracies[1])) <= 0.005  # one problem, two solvers
