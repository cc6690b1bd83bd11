import pandas as pd
import pytest
from typer.testing import CliRunner

from cl_ssl.cli import app
from cl_ssl.finetune import FinetuneConfig, finetune, load_labeled, per_class_subset


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from cl_ssl.bench import run_bench
    from cl_ssl.config import BenchConfig, EvalConfig, TrainConfig
    from cl_ssl.streams import StreamOptions

    config = BenchConfig(
        stream="digits-periods",
        strategies="naive",
        train=TrainConfig(epochs=2, batch_size=64, device="cpu"),
        evaluation=EvalConfig(knn_k=(20,), linear_probe=False, kmeans=False),
        stream_options=StreamOptions(image_size=8, max_images=100),
        out=tmp_path_factory.mktemp("runs"),
        run_name="ft",
        progress=False,
    )
    return run_bench(config).strategies[0].directory / "checkpoints" / "exp4.pt"


def test_report_has_every_class_and_the_averages(checkpoint):
    report = finetune(
        FinetuneConfig(checkpoint=checkpoint, data="digits", train_per_class=30, epochs=30)
    )
    table = report.table
    assert [str(c) for c in range(10)] == list(table.index[:10])
    assert {"accuracy", "macro avg", "weighted avg"} <= set(table.index)
    assert {"precision", "recall", "f1-score", "support"} <= set(table.columns)
    assert report.train_images == 300 and table.loc["macro avg", "support"] == report.test_images
    # The frozen embedding carries the digits' classes: far above the 10% of chance.
    assert table.loc["accuracy", "f1-score"] > 0.5
    assert "macro avg" in report.text


def test_cli_saves_the_report_as_csv(checkpoint, tmp_path):
    csv = tmp_path / "report.csv"
    result = CliRunner().invoke(
        app,
        [
            "finetune",
            "--checkpoint",
            str(checkpoint),
            "--data",
            "digits",
            "--train-per-class",
            "20",
            "--epochs",
            "5",
            "--device",
            "cpu",
            "--out",
            str(csv),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "precision" in result.output
    table = pd.read_csv(csv, index_col="class")
    assert table.loc["weighted avg", "support"] > 0


def test_split_is_stratified_and_subset_is_per_class():
    data = load_labeled("digits", None, 0.2, seed=0)
    assert set(data.train.labels.tolist()) == set(data.test.labels.tolist()) == set(range(10))
    assert abs(len(data.test) - 0.2 * 1797) < 2
    subset = per_class_subset(data.train, 7, seed=0)
    assert subset.labels.bincount().tolist() == [7] * 10


def test_unknown_data_is_named(checkpoint):
    result = CliRunner().invoke(
        app, ["finetune", "--checkpoint", str(checkpoint), "--data", "nope"]
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: --data: dataset 'nope' is neither a known dataset")
