import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cl_ssl.bench import run_bench
from cl_ssl.cli import app
from cl_ssl.config import EvalConfig, TrainConfig
from cl_ssl.reporting.report import load_runs
from cl_ssl.reporting.summary import headline_table
from cl_ssl.streams import StreamOptions

TINY = StreamOptions(image_size=8, max_images=40)


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    from cl_ssl.config import BenchConfig

    out = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        run_bench(
            BenchConfig(
                stream="digits-periods",
                strategies="naive",
                train=TrainConfig(
                    epochs=1, batch_size=32, eval_batch_size=64, device="cpu", seed=seed
                ),
                evaluation=EvalConfig(
                    knn_k=(20,), linear_probe=False, kmeans=False, checkpoints=False
                ),
                # One split seed for both: seeds vary the training only, so they may merge.
                stream_options=StreamOptions(image_size=8, max_images=40),
                out=out,
                run_name=f"seed{seed}",
                progress=False,
            )
        )
    return out


def write_run(
    root: Path,
    strategy: str = "naive",
    seed: int = 0,
    stream: str = "digits-periods",
    options: StreamOptions = TINY,
    config_file: str | None = "config.json",
    **train,
) -> Path:
    """``root/<strategy>/seed<s>/``: a few tidy metric rows and the run's config file."""
    directory = root / strategy / f"seed{seed}"
    directory.mkdir(parents=True)
    rows = [
        {"strategy": strategy, "seed": seed, "metric": "all_knn20", "train_exp": k, "eval_exp": j}
        for k in (-1, 0, 1)
        for j in (0, 1)
    ]
    frame = pd.DataFrame(rows).assign(value=lambda f: 0.5 + 0.1 * f.train_exp + 0.01 * seed)
    frame.to_csv(directory / "metrics.csv", index=False)
    if config_file is not None:
        payload = {
            "stream": stream,
            "stream_options": json.loads(json.dumps(asdict(options), default=str)),
            "train": asdict(TrainConfig(seed=seed, **{"device": "cpu", **train})),
            "evaluation": asdict(EvalConfig(seed=0)),
            "strategy": strategy,
            "strategy_options": {},
            "split_seed": options.split_seed,
            "eval_split": "test",
        }
        (directory / config_file).write_text(json.dumps(payload))
    return directory


def report(*directories: Path, out: Path):
    return CliRunner().invoke(app, ["report", *map(str, directories), "--out", str(out)])


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_report_merges_seeds_into_mean_and_std(two_seeds):
    runs = load_runs([two_seeds / "seed0", two_seeds / "seed1"])
    assert sorted(runs.timings["seed"]) == [0, 1]
    table = headline_table(runs.tidy, runs.timings).set_index("strategy")
    finals = []
    metric = next(m for m in runs.tidy.metric.unique() if m.endswith("knn20"))
    for seed in (0, 1):
        rows = runs.tidy[(runs.tidy.seed == seed) & (runs.tidy.metric == metric)]
        finals.append(rows[rows.train_exp == rows.train_exp.max()]["value"].mean())
    assert finals[0] != finals[1]  # two trainings, not one run counted twice
    assert table.loc["naive", "seeds"] == 2


def test_clssl_report_prints_and_writes_the_table_and_plots(two_seeds, tmp_path):
    result = report(two_seeds / "seed0", two_seeds / "seed1", out=tmp_path)
    assert result.exit_code == 0, result.output
    assert "±" in result.output and "naive" in result.output
    for name in ("report.md", "report.csv", "figures.csv", "curves.png", "heatmaps.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_seeds_merge_across_devices_and_a_run_reached_twice_counts_once(tmp_path):
    write_run(tmp_path / "a", seed=0)
    write_run(tmp_path / "b", seed=1, device="cuda")
    runs = load_runs([tmp_path / "a", tmp_path / "b", tmp_path / "a" / "naive"])
    assert sorted(runs.tidy.groupby("seed").size().to_dict().items()) == [(0, 6), (1, 6)]
    table = headline_table(runs.tidy).set_index("strategy")
    assert table.loc["naive", "seeds"] == 2
    assert table.loc["naive", "final acc (all-classes kNN-20)"] == "0.605 ± 0.007"


def test_duplicate_strategy_and_seed_is_refused(tmp_path):
    a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    message = f"duplicate runs of naive seed 0: {a} and {b}; pass each (strategy, seed) once"
    with pytest.raises(ValueError) as error:
        load_runs([tmp_path / "a", tmp_path / "b"])
    assert str(error.value) == message
    assert one_line_error(report(tmp_path / "a", tmp_path / "b", out=tmp_path / "r")) == (
        f"error: {message}"
    )
    assert not (tmp_path / "r").exists()


def test_runs_of_different_streams_are_refused(tmp_path):
    a = write_run(tmp_path / "a", seed=0)
    b = write_run(tmp_path / "b", seed=1, stream="twitch-periods", options=StreamOptions())
    message = (
        f"cannot merge runs of different streams: digits-periods ({a}) vs twitch-periods ({b})"
    )
    with pytest.raises(ValueError, match="cannot merge runs of different streams"):
        load_runs([tmp_path / "a", tmp_path / "b"])
    line = one_line_error(report(tmp_path / "a", tmp_path / "b", out=tmp_path / "r"))
    assert line == f"error: {message}; report them separately"


@pytest.mark.parametrize(
    ("second", "difference"),
    [
        ({"options": StreamOptions(image_size=8, max_images=100)}, "stream_options.max_images"),
        ({"options": StreamOptions(image_size=8, max_images=40, split_seed=1)}, "split_seed"),
    ],
)
def test_runs_of_different_stream_options_or_splits_are_refused(tmp_path, second, difference):
    a = write_run(tmp_path / "a", seed=0)
    b = write_run(tmp_path / "b", seed=1, **second)
    first, other = (40, 100) if "max_images" in difference else (0, 1)
    with pytest.raises(ValueError) as error:
        load_runs([tmp_path / "a", tmp_path / "b"])
    assert str(error.value).startswith(
        f"cannot merge runs of different streams: {difference} {first} ({a}) vs {other} ({b})"
    )


def test_runs_of_different_budgets_are_refused(tmp_path):
    a = write_run(tmp_path / "a", seed=0, epochs=20)
    b = write_run(tmp_path / "b", seed=1, epochs=5)
    message = f"cannot merge runs of different budgets: train.epochs 20 ({a}) vs 5 ({b})"
    with pytest.raises(ValueError, match="different budgets: train.epochs 20"):
        load_runs([tmp_path / "a", tmp_path / "b"])
    line = one_line_error(report(tmp_path / "a", tmp_path / "b", out=tmp_path / "r"))
    assert line == f"error: {message}; report them separately"
    write_run(tmp_path / "c", seed=2, epochs=5, lr=0.1)
    with pytest.raises(ValueError, match=r"train.epochs 20 vs 5, train.lr 0.001 vs 0.1 \("):
        load_runs([tmp_path / "a", tmp_path / "c"])


def test_runs_of_one_strategy_with_different_options_are_rows_of_their_own(tmp_path):
    write_run(tmp_path / "a", strategy="lwf-ssl", seed=0)
    b = write_run(tmp_path / "b", strategy="lwf-ssl", seed=0)  # same seed, other options
    payload = json.loads((b / "config.json").read_text())
    payload["strategy_options"] = {"lwf-ssl": {"lambda": "10"}, "replay": {"memory": "50"}}
    (b / "config.json").write_text(json.dumps(payload))
    runs = load_runs([tmp_path / "a", tmp_path / "b"])
    assert sorted(runs.tidy.strategy.unique()) == [
        "lwf-ssl (lambda=10)",
        "lwf-ssl (lambda=default)",
    ]
    table = headline_table(runs.tidy).set_index("strategy")
    assert list(table["seeds"]) == [1, 1]  # two variants, never one mean over them
    write_run(tmp_path / "c", strategy="lwf-ssl", seed=0)  # a second default run of seed 0
    with pytest.raises(ValueError, match="duplicate runs of lwf-ssl \\(lambda=default\\) seed 0"):
        load_runs([tmp_path / "a", tmp_path / "b", tmp_path / "c"])


def test_an_old_results_json_is_read_and_compared_with_what_it_records(tmp_path):
    old = [write_run(tmp_path / "old", seed=s, config_file="results.json") for s in (0, 1)]
    for directory in old:  # results.json written before config.json: no stream options
        payload = json.loads((directory / "results.json").read_text())
        del payload["stream_options"], payload["split_seed"], payload["eval_split"]
        payload.update(train_seconds=1.0, eval_seconds=1.0, images_per_second=10.0)
        (directory / "results.json").write_text(json.dumps(payload))
    assert sorted(load_runs([tmp_path / "old"]).timings["seed"]) == [0, 1]
    new = write_run(tmp_path / "new", seed=2)
    with pytest.raises(ValueError) as error:
        load_runs([tmp_path / "old", tmp_path / "new"])
    assert str(error.value).startswith(
        "cannot merge runs of different streams: stream_options unknown vs recorded, "
        f"split_seed unknown vs 0 ({old[0]} vs {new})"
    )


def test_a_run_without_any_config_is_reported_only_alone(tmp_path):
    alone = write_run(tmp_path / "x", config_file=None)
    assert len(load_runs([tmp_path / "x"]).tidy) == 6
    write_run(tmp_path / "y", seed=1)
    line = one_line_error(report(tmp_path / "x", tmp_path / "y", out=tmp_path / "r"))
    assert line == (
        f"error: cannot merge {alone} with other runs: it has neither config.json nor "
        "results.json, so its stream and budget are unknown; report it alone"
    )


def test_report_on_a_folder_without_runs_names_the_problem(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().startswith(f"error: no metrics.csv under {tmp_path}")


def test_report_names_missing_columns(tmp_path):
    (tmp_path / "x").mkdir()
    pd.DataFrame({"strategy": ["a"], "value": [1.0]}).to_csv(tmp_path / "x" / "metrics.csv")
    with pytest.raises(ValueError, match=r"lacks columns \['eval_exp', 'metric'"):
        load_runs([tmp_path])
