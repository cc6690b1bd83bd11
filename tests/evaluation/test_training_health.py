"""Embedding health in training (TensorBoard), in evaluation (the summary), and data waits."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from cl_ssl.bench import run_bench
from cl_ssl.evaluation.features import FeatureSet
from cl_ssl.evaluation.metrics import feature_scores
from cl_ssl.evaluation.training_health import TrainingHealth
from cl_ssl.models.ssl_model import SSLOutput


def step(projections: torch.Tensor, iteration: int = 50):
    features = torch.randn(projections.shape[0], projections.shape[1], 8)
    return SimpleNamespace(
        mb_output=SSLOutput(features, projections),
        clock=SimpleNamespace(train_iterations=iteration),
    )


def test_training_health_sees_a_collapse_and_an_isotropic_batch():
    metric = TrainingHealth(every=50)
    metric.before_training_epoch(None)
    collapsed = torch.ones(64, 2, 16)
    values = {v.name: v.value for v in metric.after_training_iteration(step(collapsed))}
    assert values["Health/std_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert values["Health/effective_rank"] == pytest.approx(1.0, abs=1e-3)
    assert values["Health/alignment"] == pytest.approx(0.0, abs=1e-6)  # identical views
    torch.manual_seed(0)
    spread = torch.randn(4096, 2, 16)
    values = {v.name: v.value for v in metric.after_training_iteration(step(spread))}
    assert values["Health/std_ratio"] == pytest.approx(1.0, abs=0.05)
    assert values["Health/effective_rank"] > 15.5
    assert metric.after_training_iteration(step(spread, iteration=51)) == []  # not every step


def test_data_wait_is_the_time_between_steps():
    import time

    metric = TrainingHealth(every=10**9)
    metric.before_training_epoch(None)
    for _ in range(3):
        time.sleep(0.02)  # the loader handing over a batch
        metric.before_training_iteration(None)
        metric.after_training_iteration(step(torch.randn(4, 2, 3)))
    (share,) = metric.after_training_epoch(step(torch.randn(4, 2, 3)))
    assert metric.data_wait_seconds >= 0.06
    assert 0.5 < share.value <= 1.0  # nothing but waiting happened


def test_feature_health_of_each_split_and_their_union():
    torch.manual_seed(0)
    labels = torch.zeros(512, dtype=torch.long)
    healthy = FeatureSet(torch.randn(512, 8), labels)
    collapsed = FeatureSet(torch.ones(512, 8), labels)
    first, second, union = feature_scores([healthy, collapsed], seed=0)
    assert first["StdRatio"] == pytest.approx(1.0, abs=0.1)
    assert first["EffRank"] > 7.5
    assert second["StdRatio"] == pytest.approx(0.0, abs=1e-6)
    assert second["EffRank"] == pytest.approx(1.0, abs=1e-3)
    assert second["Uniformity"] == pytest.approx(0.0, abs=1e-6)
    assert second["EffRank"] < union["EffRank"] < first["EffRank"] + 1


def test_a_bench_reports_health_and_data_wait(tiny_bench):
    result = run_bench(tiny_bench("naive"))
    run = result.strategies[0]
    payload = json.loads((run.directory / "results.json").read_text())
    assert 0 <= payload["data_wait_pct"] <= 100
    summary = pd.read_csv(result.directory / "summary.csv")
    rank = float(summary["final eff. rank"].iloc[0])
    assert 1 <= rank <= 128  # at most the feature width of the small ResNet
    assert 0 < float(summary["final std ratio"].iloc[0]) <= 1.5
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in run.directory.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    assert "Health/data_wait_share" in tags
