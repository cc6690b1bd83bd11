import pandas as pd
import pytest
from typer.testing import CliRunner

from cl_ssl.bench import run_bench
from cl_ssl.cli import app
from cl_ssl.reporting.report import headline_table, load_runs


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    from cl_ssl.config import BenchConfig, EvalConfig, TrainConfig
    from cl_ssl.streams import StreamOptions

    out = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        run_bench(
            BenchConfig(
                stream="digits-periods",
                strategies="naive",
                train=TrainConfig(
                    epochs=1, batch_size=32, eval_batch_size=64, device="cpu", seed=seed
                ),
                evaluation=EvalConfig(knn_k=(20,), linear_probe=False, checkpoints=False),
                stream_options=StreamOptions(image_size=8, max_images=40, seed=seed),
                out=out,
                run_name=f"seed{seed}",
                progress=False,
            )
        )
    return out


def test_report_merges_seeds_into_mean_and_std(two_seeds):
    runs = load_runs([two_seeds / "seed0", two_seeds / "seed1"])
    assert sorted(runs.timings["seed"]) == [0, 1]
    table = headline_table(runs.tidy, runs.timings).set_index("strategy")
    finals = []
    for seed in (0, 1):
        rows = runs.tidy[(runs.tidy.seed == seed) & (runs.tidy.metric == "knn20")]
        finals.append(rows[rows.train_exp == rows.train_exp.max()]["value"].mean())
    mean, std = pd.Series(finals).mean(), pd.Series(finals).std(ddof=1)
    assert table.loc["naive", "seeds"] == 2
    assert table.loc["naive", "final kNN-20"] == f"{mean:.4f} ± {std:.4f}"
    assert "final linear" not in table.columns  # not measured: no column


def test_clssl_report_prints_and_writes_the_table_and_plots(two_seeds, tmp_path):
    result = CliRunner().invoke(
        app, ["report", str(two_seeds / "seed0"), str(two_seeds / "seed1"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "±" in result.output and "naive" in result.output
    for name in ("report.md", "report.csv", "figures.csv", "curves.png", "heatmaps.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_report_on_a_folder_without_runs_names_the_problem(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().startswith(f"error: no metrics.csv under {tmp_path}")


def test_report_names_missing_columns(tmp_path):
    (tmp_path / "x").mkdir()
    pd.DataFrame({"strategy": ["a"], "value": [1.0]}).to_csv(tmp_path / "x" / "metrics.csv")
    with pytest.raises(ValueError, match=r"lacks columns \['eval_exp', 'metric'"):
        load_runs([tmp_path])
