"""A metric declared in one place reaches metrics.csv, the figures, the summary and the list."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cl_ssl.bench import run_bench
from cl_ssl.checkpoint import load_encoder
from cl_ssl.config import EvalConfig, StreamOptions
from cl_ssl.data.files import image_batches
from cl_ssl.evaluation import continual, metric_registry
from cl_ssl.evaluation.metric_registry import register_metric
from cl_ssl.registry import UnknownNameError, streams


def mean_norm(features: torch.Tensor) -> float:
    """Mean L2 norm of the frozen features."""
    return float(features.norm(dim=1).mean())


@pytest.fixture
def declared(monkeypatch):
    """MeanNorm (higher is better) and MeanNormDown (the same numbers, lower is better),
    registered for this test only."""
    metric_registry.registered()  # the built-ins first, so the copy below holds them
    entries = dict(metric_registry.metrics._entries)
    monkeypatch.setattr(metric_registry.metrics, "_entries", entries)
    register_metric("MeanNorm", "higher", title="mean norm")(mean_norm)
    register_metric("MeanNormDown", "lower", ("all",), title="mean norm (down)")(mean_norm)


def test_builtins_keep_their_names_directions_and_order():
    names = [spec.name for spec in metric_registry.registered()]
    builtins = ["Loss", "kNN", "Linear", "NMI", "ARI", "StdRatio", "EffRank", "Uniformity"]
    assert [n for n in names if n in builtins] == builtins
    assert not continual.higher_is_better("ssl_loss")
    assert not continual.higher_is_better("all_uniformity")  # log E exp(-2d^2): lower spreads
    assert all(
        continual.higher_is_better(m) for m in ("all_knn20", "exp_knn200", "all_linear", "all_nmi")
    )
    assert metric_registry.title_of("all_knn200") == "all-classes kNN-200"


def test_a_bad_declaration_is_one_line_naming_the_fix():
    with pytest.raises(ValueError, match="direction must be 'higher' or 'lower'"):
        register_metric("X", "up")
    with pytest.raises(ValueError, match="protocols must be among all, experience"):
        register_metric("X", "higher", ("union",))
    with pytest.raises(UnknownNameError, match="choose from: ARI, EffRank"):
        metric_registry.metrics.get("nope")


def test_the_list_shows_a_declared_metric(declared):
    lines = "\n".join(metric_registry.metric_lines())
    assert "  MeanNorm: Mean L2 norm of the frozen features." in lines
    assert "lower is better; features; protocols: all; metrics.csv: all_meannormdown" in lines


def test_a_metric_declared_in_one_place_runs_through_a_bench(declared, tiny_bench):
    config = tiny_bench("naive")
    evaluation = EvalConfig(knn_k=(5,), linear_probe=False, kmeans=False)
    bench = run_bench(dataclasses.replace(config, evaluation=evaluation))
    [run] = bench.strategies
    rows = pd.read_csv(run.directory / "metrics.csv")
    mine = rows[rows["metric"] == "all_meannorm"]
    assert set(mine["eval_exp"]) >= {0, 1, -1}

    # The value: the mean norm of each test split's features, recomputed from the checkpoint.
    stream = streams.get("digits-periods")(StreamOptions(image_size=8, max_images=40))
    trained = sorted(set(mine["train_exp"]) - {-1})
    assert trained == list(range(len(stream.experiences))) and len(trained) >= 2
    for k in trained:
        encoder = load_encoder(run.directory / "checkpoints" / f"exp{k}.pt")
        with torch.no_grad():
            splits = [
                torch.cat([encoder(batch) for batch in image_batches(e.test, 64)])
                for e in stream.experiences
            ]
        for j, features in enumerate([*splits, torch.cat(splits)]):
            eval_exp = j if j < len(splits) else -1
            value = mine[(mine["train_exp"] == k) & (mine["eval_exp"] == eval_exp)]["value"]
            assert value.item() == pytest.approx(mean_norm(features), rel=1e-4)
    # The per-experience protocol scores the same test features.
    exp_rows = rows[rows["metric"] == "exp_meannorm"].set_index(["train_exp", "eval_exp"])
    all_rows = mine[mine["eval_exp"] >= 0].set_index(["train_exp", "eval_exp"])
    assert np.allclose(exp_rows.loc[all_rows.index, "value"], all_rows["value"], rtol=1e-6)

    # Forgetting by direction: best = max for MeanNorm, min for MeanNormDown.
    R, _ = continual.tidy_matrix(rows, "all_meannorm")
    last = len(R) - 1
    up = np.mean([R[:last, j].max() - R[last, j] for j in range(last)])
    down = np.mean([R[last, j] - R[:last, j].min() for j in range(last)])
    figures = continual.tidy_figures(rows).set_index("metric")
    assert figures.loc["all_meannorm", "forgetting"] == pytest.approx(up)
    assert figures.loc["all_meannormdown", "forgetting"] == pytest.approx(down)
    assert figures.loc["all_meannorm", "bwt"] == figures.loc["all_meannormdown", "bwt"]
    # The norm grows with training here (each column of R rises), so the same numbers are
    # a gain for the higher-is-better metric and a loss for the lower-is-better one.
    assert (np.diff(R, axis=0) > 0).all()
    forgetting = figures["forgetting"]
    assert forgetting["all_meannorm"] < 0 < forgetting["all_meannormdown"]

    # Its TensorBoard tags and its summary columns.
    events = EventAccumulator(str(run.directory))
    events.Reload()
    scalars = events.Tags()["scalars"]
    for tag in ("All_MeanNorm_Stream", "All_MeanNorm_Forgetting", "All_MeanNormDown_BWT"):
        assert f"{tag}/eval_phase/test_stream" in scalars
    final = events.Scalars("All_MeanNorm_Forgetting/eval_phase/test_stream")[-1].value
    assert final == pytest.approx(up, rel=1e-5)
    summary = bench.summary(numeric=True).set_index("strategy")
    assert summary.loc["naive", "forgetting (all-classes mean norm)"] == pytest.approx(up)
    assert summary.loc["naive", "final all-classes mean norm"] == pytest.approx(
        mine[(mine["train_exp"] == last) & (mine["eval_exp"] == -1)]["value"].item()
    )


def test_clssl_list_metrics_prints_every_metric_with_its_direction(declared):
    from typer.testing import CliRunner

    from cl_ssl.cli import app

    result = CliRunner().invoke(app, ["list", "--metrics"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == metric_registry.metric_lines()
    assert "  MeanNorm: Mean L2 norm of the frozen features." in result.output
    assert "  Uniformity: " in result.output and "lower is better; loss;" in result.output


def test_an_entry_point_naming_a_bare_function_is_a_one_line_error(monkeypatch):
    """Loading an entry point that names a function registers the function, not a metric."""
    metric_registry.registered()
    entries = {**metric_registry.metrics._entries, "Bare": mean_norm}
    monkeypatch.setattr(metric_registry.metrics, "_entries", entries)
    with pytest.raises(ValueError, match="point its entry point at the module that declares it"):
        metric_registry.registered()
