import json
from dataclasses import asdict, replace
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
    experiences: int = 2,
    trained: int | None = None,
    union: bool = False,
    base: float = 0.5,
    **train,
) -> Path:
    """``root/<strategy>/seed<s>/``: tidy metric rows and the run's config file.

    Trained through ``trained`` (all ``experiences`` by default) of the stream's experiences;
    a run that trained them all with a ``config_file`` finished: it has ``results.json``.
    ``union`` adds the all-classes rows (``eval_exp`` -1); values are ``base + 0.1 *
    train_exp + 0.01 * seed``.
    """
    directory = root / strategy / f"seed{seed}"
    directory.mkdir(parents=True)
    trained = experiences if trained is None else trained
    rows = [
        {"strategy": strategy, "seed": seed, "metric": "all_knn20", "train_exp": k, "eval_exp": j}
        for k in range(-1, trained)
        for j in range(-1 if union else 0, experiences)
    ]
    frame = pd.DataFrame(rows).assign(value=lambda f: base + 0.1 * f.train_exp + 0.01 * seed)
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
        if trained == experiences and config_file != "results.json":
            timings = {"train_seconds": 1.0, "eval_seconds": 1.0, "images_per_second": 10.0}
            results = {**payload, **timings, "experiences": experiences}
            (directory / "results.json").write_text(json.dumps(results))
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
    for seed in (0, 1):  # the SSL loss: 40-image kNN accuracies of two seeds may tie
        rows = runs.tidy[(runs.tidy.seed == seed) & (runs.tidy.metric == "ssl_loss")]
        finals.append(rows[rows.train_exp == rows.train_exp.max()]["value"].mean())
    assert finals[0] != finals[1]  # two trainings, not one run counted twice
    assert table.loc["naive", "seeds"] == 2


@pytest.mark.drawn_figures
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


def test_clssl_report_pairs_every_strategy_with_naive_seed_by_seed(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path / "runs", seed=seed)
        write_run(tmp_path / "runs", strategy="replay", seed=seed, base=0.6)
    result = report(tmp_path / "runs", out=tmp_path / "report")
    assert result.exit_code == 0, result.output
    paired = pd.read_csv(tmp_path / "report" / "paired.csv").set_index(["strategy", "column"])
    final = paired.loc[("replay", "final acc (all-classes kNN-20) − naive")]
    assert (final["n"], final["mean"]) == (2, pytest.approx(0.1))
    assert paired.loc[("replay", "forgetting − naive"), "mean"] == pytest.approx(0.0)
    assert "Paired against naive" in (tmp_path / "report" / "report.md").read_text()
    assert "+0.100 [+0.100, +0.100]" in result.output


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


def test_dataset_folders_given_relative_and_absolute_merge_and_other_folders_do_not(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    relative = StreamOptions(image_size=8, max_images=40, datasets="cifar10=data/c10,digits,./f")
    absolute = f"cifar10={tmp_path}/data/c10,digits,{tmp_path}/f"
    write_run(tmp_path / "a", seed=0, stream="pair", options=relative)
    write_run(tmp_path / "b", seed=1, stream="pair", options=replace(relative, datasets=absolute))
    assert sorted(load_runs([tmp_path / "a", tmp_path / "b"]).timings["seed"]) == [0, 1]
    other = replace(relative, datasets="cifar10=data/other,digits,./f")
    c = write_run(tmp_path / "c", seed=2, stream="pair", options=other)
    with pytest.raises(ValueError) as error:
        load_runs([tmp_path / "a", c])
    assert f"stream_options.datasets cifar10={tmp_path}/data/c10," in str(error.value)
    assert f"vs cifar10={tmp_path}/data/other," in str(error.value)


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
    assert sorted(runs.tidy.strategy.unique()) == [  # the values they ran with, typed
        "lwf-ssl (lambda=1.0)",
        "lwf-ssl (lambda=10.0)",
    ]
    table = headline_table(runs.tidy).set_index("strategy")
    assert list(table["seeds"]) == [1, 1]  # two variants, never one mean over them
    c = write_run(tmp_path / "c", strategy="lwf-ssl", seed=0)  # lambda=1 given: the default
    payload["strategy_options"] = {"lwf-ssl": {"lambda": "1"}}
    (c / "config.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="duplicate runs of lwf-ssl \\(lambda=1.0\\) seed 0"):
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


def test_stopped_and_failed_runs_are_listed_apart_and_never_ranked(tmp_path):
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "report"
    write_run(a, experiences=5, union=True)  # finished: 0.9 on the union after experience 4
    # Stopped after 2 of 5 experiences, with a higher accuracy so far (1.0 after experience 1).
    ewc = write_run(a, strategy="ewc", experiences=5, trained=2, union=True, base=0.9)
    lwf = write_run(a, strategy="lwf-ssl", experiences=5, trained=1, union=True, base=0.9)
    failure = {"name": "lwf-ssl", "seed": 0, "experience": 1, "error": "NonFiniteLoss"}
    (lwf / "failure.json").write_text(json.dumps(failure))
    naive1 = write_run(b, seed=1, experiences=5, trained=3, union=True, base=0.9)

    result = report(a, b, out=out)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "report.csv")
    assert list(table["strategy"]) == ["naive"] and list(table["seeds"]) == [1]
    assert table["final acc (all-classes kNN-20)"].tolist() == [0.9]  # seed 0's alone
    listed = pd.read_csv(out / "incomplete.csv")
    assert listed.to_dict("records") == [
        {"strategy": "ewc", "seed": 0, "status": "stopped", "progress": "2 of 5 experiences",
         "path": str(ewc)},
        {"strategy": "lwf-ssl", "seed": 0, "status": "failed (NonFiniteLoss)",
         "progress": "1 of 5 experiences", "path": str(lwf)},
        {"strategy": "naive", "seed": 1, "status": "stopped", "progress": "3 of 5 experiences",
         "path": str(naive1)},
    ]  # fmt: skip
    assert "Not ranked: 3 run(s) stopped or failed" in result.output
    assert "| ewc        |      0 | stopped" in result.output
    assert "Not ranked" in (out / "report.md").read_text()
    assert set(load_runs([a, b]).tidy["strategy"]) == {"naive"}


def test_a_real_run_stopped_after_its_first_experience_stays_out_of_the_mean(two_seeds, tmp_path):
    import shutil

    shutil.copytree(two_seeds, tmp_path / "runs")
    stopped = tmp_path / "runs" / "seed1" / "naive" / "seed1"
    (stopped / "results.json").unlink()  # killed after experience 0: no results.json yet
    rows = pd.read_csv(stopped / "metrics.csv")
    rows[rows.train_exp <= 0].to_csv(stopped / "metrics.csv", index=False)
    total = json.loads((two_seeds / "seed0" / "naive" / "seed0" / "results.json").read_text())
    runs = load_runs([tmp_path / "runs" / "seed0", tmp_path / "runs" / "seed1"])
    assert set(runs.tidy["seed"]) == {0} and list(runs.timings["seed"]) == [0]
    assert runs.incomplete.to_dict("records") == [
        {
            "strategy": "naive",
            "seed": 1,
            "status": "stopped",
            "progress": f"1 of {total['experiences']} experiences",
            "path": str(stopped),
        }
    ]
    assert headline_table(runs.tidy, runs.timings).set_index("strategy").loc["naive", "seeds"] == 1


def test_report_without_a_finished_run_lists_them_and_exits_1(tmp_path):
    stopped = write_run(tmp_path / "a", experiences=3, trained=1)
    result = report(tmp_path / "a", out=tmp_path / "r")
    assert result.exit_code == 1
    assert str(stopped) in result.output and "1 of 3 experiences" in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: no finished run to report")
    assert (tmp_path / "r" / "incomplete.csv").is_file()
    assert not (tmp_path / "r" / "report.csv").exists()


def _cut_mid_line(text: str) -> str:
    return text[: text.rindex("\n", 0, len(text) - 1) + 12]  # "naive,0,all_" of the last row


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (_cut_mid_line, "its last line is cut short"),
        (lambda text: text.replace("\nnaive,0,", "\nnaive,,", 1), "column seed has empty"),
        (lambda text: text + 'naive,0,all_knn20,"1,0,0.5\n', "pandas cannot parse it"),
        (lambda text: text + "naive,0,all_knn20,1,0,abc\n", "column value has non-numeric"),
        (lambda text: text.replace("eval_exp,", "", 1), "it lacks columns ['eval_exp']"),
    ],
)
def test_a_truncated_or_corrupt_metrics_csv_is_one_line_naming_the_file(tmp_path, corrupt, reason):
    csv = write_run(tmp_path / "a") / "metrics.csv"
    csv.write_text(corrupt(csv.read_text()))
    line = one_line_error(report(tmp_path / "a", out=tmp_path / "r"))
    assert line.startswith(f"error: {csv} is truncated or corrupt: {reason}")
    assert line.endswith("; restore the file or rerun that run")
    assert not (tmp_path / "r").exists()


def test_runs_probed_by_different_backends_are_refused_and_older_runs_read_sklearn(
    tmp_path, two_seeds
):
    recorded = json.loads((two_seeds / "seed0" / "naive" / "seed0" / "config.json").read_text())
    assert recorded["evaluation"]["probe_backend"] == "sklearn"  # auto, resolved on the CPU

    def probed(name: str, seed: int, backend: str | None) -> Path:
        directory = write_run(tmp_path / name, seed=seed)
        for file in ("config.json", "results.json"):
            payload = json.loads((directory / file).read_text())
            del payload["evaluation"]["probe_backend"]  # None: a run from before the setting
            if backend is not None:
                payload["evaluation"]["probe_backend"] = backend
            (directory / file).write_text(json.dumps(payload))
        return tmp_path / name

    old, sklearn = probed("old", 0, None), probed("sk", 1, "sklearn")
    torch = probed("t", 2, "torch")
    assert sorted(load_runs([old, sklearn]).timings["seed"]) == [0, 1]
    with pytest.raises(ValueError, match="budgets: evaluation.probe_backend sklearn"):
        load_runs([old, torch])
