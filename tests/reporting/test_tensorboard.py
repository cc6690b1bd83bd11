import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cl_ssl.bench import run_bench
from cl_ssl.reporting.tensorboard import custom_scalars_layout


@pytest.fixture(scope="module")
def two_strategies(tmp_path_factory):
    from cl_ssl.config import BenchConfig, TrainConfig
    from cl_ssl.streams import StreamOptions

    config = BenchConfig(
        stream="digits-periods",
        strategies="naive,lwf-ssl",
        train=TrainConfig(epochs=1, batch_size=32, eval_batch_size=64, device="cpu"),
        stream_options=StreamOptions(image_size=8, max_images=40),
        out=tmp_path_factory.mktemp("runs"),
        run_name="tb",
        progress=False,
    )
    return run_bench(config)


def test_strategies_log_identical_tags_with_the_csv_values(two_strategies):
    tags = {}
    for result in two_strategies.strategies:
        events = EventAccumulator(str(result.directory), size_guidance={"scalars": 0}).Reload()
        tags[result.name] = set(events.Tags()["scalars"])
        tidy = result.metrics
        metric = tidy.metric == "all_knn20"
        expected = tidy[metric & (tidy.eval_exp == 2)].sort_values("train_exp")
        logged = events.Scalars("All_kNN20_Exp/eval_phase/test_stream/Task000/Exp002")
        assert [e.step for e in logged] == [0, 1, 2, 3, 4, 5]
        assert [e.value for e in logged] == pytest.approx(expected["value"].tolist(), abs=1e-6)
        union = tidy[metric & (tidy.eval_exp == -1)].sort_values("train_exp")["value"]
        logged = events.Scalars("All_kNN20_Stream/eval_phase/test_stream")
        assert [e.value for e in logged] == pytest.approx(union.tolist(), abs=1e-6)
    assert tags["naive"] == tags["lwf-ssl"]
    for name in ("Loss", "All_kNN20", "All_Linear", "All_NMI", "Exp_kNN20", "Exp_Linear"):
        assert f"{name}_Forgetting/eval_phase/test_stream" in tags["naive"]
        assert f"{name}_Plasticity/eval_phase/test_stream" in tags["naive"]


def test_custom_scalars_layout_and_hparams_are_written(two_strategies):
    from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata

    result = two_strategies.strategies[1]
    events = EventAccumulator(str(result.directory), size_guidance={"tensors": 0}).Reload()
    assert custom_scalar_metadata.CONFIG_SUMMARY_TAG in events.Tags()["tensors"]
    assert "_hparams_/session_start_info" in events.summary_metadata
    final = events.Scalars("hparam/all_linear_final_union")[-1].value
    tidy = result.metrics
    union = tidy[(tidy.metric == "all_linear") & (tidy.eval_exp == -1) & (tidy.train_exp == 4)]
    assert final == pytest.approx(union["value"].item(), abs=1e-6)


def test_layout_groups_every_metric():
    layout = custom_scalars_layout(["All_kNN20", "Loss"])
    assert set(layout) == {"All_kNN20", "Loss"}
    charts = layout["All_kNN20"]
    assert charts["All_kNN20 per experience"][1] == [r"All_kNN20_Exp/eval_phase/test_stream/.*"]
    assert charts["All_kNN20 on all test splits"][1] == [r"All_kNN20_Stream/eval_phase/test_stream"]
    assert "Loss on all test splits" not in layout["Loss"]


@pytest.mark.drawn_figures
def test_summary_and_plots_are_written(two_strategies):
    directory = two_strategies.directory
    summary = pd.read_csv(directory / "summary.csv")
    assert set(summary["strategy"]) == {"naive", "lwf-ssl"}
    key = "final acc (all-classes linear)"
    assert summary[key].is_monotonic_decreasing  # ranked by the final all-classes accuracy
    expected = {key, "avg incremental acc", "plasticity", "forgetting", "BWT", "FWT"}
    assert expected | {"SSL-loss forgetting %", "images/step"} <= set(summary.columns)
    for name in ("curves.png", "forgetting.png", "heatmaps.png"):
        png = directory / "plots" / name
        assert png.read_bytes()[:4] == b"\x89PNG"
