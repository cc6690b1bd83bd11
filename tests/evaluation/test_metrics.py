import numpy as np
import pandas as pd
import pytest
import torch

from cl_ssl.bench import run_strategy
from cl_ssl.data.images import ImageTensorDataset
from cl_ssl.evaluation import continual
from cl_ssl.evaluation.features import extract_features
from cl_ssl.streams import ExperienceData, StreamOptions, make_stream


def test_a_stream_without_labels_reports_the_ssl_loss_only(tmp_path, tiny_bench):
    torch.manual_seed(0)
    periods = [
        ExperienceData(
            f"p{k}",
            ImageTensorDataset.unlabeled(torch.randint(0, 255, (40, 3, 8, 8), dtype=torch.uint8)),
        )
        for k in range(2)
    ]
    stream = make_stream("unlabeled", periods, 8, StreamOptions())
    result = run_strategy(stream, ("naive",), tiny_bench(), tmp_path / "naive")
    assert set(result.metrics["metric"]) == {"ssl_loss"}
    from cl_ssl.reporting.summary import headline_table

    columns = headline_table(result.metrics).columns
    assert not any("kNN" in c or "linear" in c or "NMI" in c for c in columns)


def test_representation_metrics_are_computed_on_the_frozen_backbone(tiny_bench):
    """Both protocols' kNN-20 equal a kNN recomputed from the final checkpoint's features.

    Per-experience: bank and queries of experience j only. All-classes: one bank over the
    training images of every experience, queried with each test split and their union.
    """
    from cl_ssl.bench import run_bench
    from cl_ssl.checkpoint import load_encoder
    from cl_ssl.evaluation.knn import knn_predict, knn_top1
    from cl_ssl.registry import streams

    config = tiny_bench()
    result = run_bench(config).strategies[0]
    encoder = load_encoder(result.directory / "checkpoints" / "exp4.pt")
    stream = streams.get("digits-periods")(config.stream_options)
    with torch.no_grad():
        trains = [encoder(d.train.images) for d in stream.experiences]
        tests = [encoder(d.test.images) for d in stream.experiences]
    bank = torch.cat(trains)
    bank_labels = torch.cat([d.train.labels for d in stream.experiences])
    hits = []
    for j, data in enumerate(stream.experiences):
        expected = knn_top1(trains[j], data.train.labels, tests[j], data.test.labels, k=20)
        assert result.matrix("exp_knn20").iloc[-1, j] == pytest.approx(expected)
        predicted = knn_predict(bank, bank_labels, tests[j], k=20)
        hits.append(predicted == data.test.labels)
        assert result.matrix("all_knn20").iloc[-1, j] == pytest.approx(hits[-1].float().mean())
    tidy = result.metrics
    union = tidy[(tidy.metric == "all_knn20") & (tidy.eval_exp == -1) & (tidy.train_exp == 4)]
    assert union["value"].item() == pytest.approx(torch.cat(hits).float().mean().item())


def test_continual_figures_reach_the_loggers_and_match_the_matrix(tiny_bench):
    from cl_ssl.bench import run_bench

    result = run_bench(tiny_bench()).strategies[0]
    R, baseline = continual.tidy_matrix(result.metrics, "all_knn20")
    expected = continual.figures(R, baseline, "all_knn20")
    logged = pd.read_csv(result.directory / "metrics.csv")
    assert len(logged) == len(result.metrics)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(result.directory)).Reload()
    last = events.Scalars("All_kNN20_Forgetting/eval_phase/test_stream")[-1]
    assert last.step == 5 and last.value == pytest.approx(expected["forgetting"], abs=1e-6)
    bwt = events.Scalars("All_kNN20_BWT/eval_phase/test_stream")[-1].value
    assert bwt == pytest.approx(expected["bwt"], abs=1e-6)


def test_feature_extraction_is_batched_no_grad_and_restores_the_mode(tiny_stream, make_template):
    strategy = make_template(tiny_stream)
    backbone = strategy.model.backbone.train()
    data = tiny_stream.experiences[0].train
    one = extract_features(backbone, strategy.augment, data, batch_size=7)
    assert backbone.training and not one.features.requires_grad
    backbone.eval()
    with torch.no_grad():
        whole = backbone(strategy.augment.eval_view(data.images))
    torch.testing.assert_close(one.features, whole, rtol=1e-4, atol=1e-5)
    assert torch.equal(one.labels, data.labels) and one.is_labeled
    assert np.isfinite(one.features.numpy()).all()


def test_features_are_gathered_where_asked(tiny_stream, make_template):
    """``keep``: the torch probe's features stay on the model's device (meta stands in)."""
    strategy = make_template(tiny_stream)
    data = tiny_stream.experiences[0].train
    kept = extract_features(strategy.model.backbone, strategy.augment, data, 7, keep="meta")
    assert kept.features.device.type == kept.labels.device.type == "meta"
    assert kept.features.shape == (len(data), strategy.model.backbone.feature_dim)
