"""clssl evolve end to end: weight spaces of the registry, validation-only fitness, resume."""

import json
import shlex
from dataclasses import fields, replace

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from cl_ssl.cli import app
from cl_ssl.evolve.run import EvolveSettings, load_settings, run_evolve
from cl_ssl.evolve.space import parse_weight_flags, weight_space
from cl_ssl.options import field_key, parse_options
from cl_ssl.registry import strategies

WEIGHTED = [n for n in strategies.names() if getattr(strategies.get(n), "loss_weights", None)]
TINY = ["--stream", "digits-periods", "--image-size", "8", "--max-images", "40",
        "--batch-size", "32", "--no-progress"]  # fmt: skip


@pytest.mark.parametrize("name", WEIGHTED)
def test_declared_weights_are_options_whose_defaults_lie_in_their_range(name):
    plugin = strategies.get(name)
    defaults = plugin.Options()
    keys = {field_key(f.name): f.name for f in fields(plugin.Options)}
    for key, (low, high, *scale) in plugin.loss_weights.items():
        assert key in keys, f"{name}.{key} is not an --opt of {name}"
        assert scale in ([], ["log"]) and (low > 0 if scale else True)
        assert low <= getattr(defaults, keys[key]) <= high
        middle = parse_options(plugin.Options, {key: repr((low + high) / 2)}, name)
        assert getattr(middle, keys[key]) == (low + high) / 2


def test_weight_space_of_a_composition_and_its_errors():
    assert weight_space("lwf-ssl+pnr").names == (
        "lwf-ssl.lambda",
        "pnr.weight",
        "pnr.negative-weight",
    )
    assert weight_space("lwf-ssl", {"lwf-ssl.lambda": (0.5, 3.0)}).ranges == {
        "lwf-ssl.lambda": (0.5, 3.0)
    }
    with pytest.raises(ValueError, match="no loss weight"):
        weight_space("naive")
    with pytest.raises(ValueError, match="one run"):
        weight_space("lwf-ssl,ewc")
    with pytest.raises(ValueError, match="not in --strategy"):
        weight_space("lwf-ssl", {"ewc.lambda": (0.0, 1.0)})
    # Mixed SSL objectives add one mixing weight per method; the strategy may have none.
    assert weight_space("naive", method="simclr+barlow-twins").ranges == {
        "simclr.weight": (0.0, 1.0),
        "barlow-twins.weight": (0.0, 1.0),
    }
    assert weight_space("naive", {"vicreg.weight": (0.0, 2.0)}, "simclr+vicreg").ranges[
        "vicreg.weight"
    ] == (0.0, 2.0)
    with pytest.raises(ValueError, match="not in --strategy"):
        weight_space("naive", {"vicreg.weight": (0.0, 2.0)}, "simclr+barlow-twins")
    assert parse_weight_flags(["lwf-ssl.lambda=0:3"]) == {"lwf-ssl.lambda": (0.0, 3.0)}
    assert parse_weight_flags(["ewc.lambda=1e2:1e6:log"]) == {"ewc.lambda": (1e2, 1e6, "log")}
    with pytest.raises(ValueError, match="LOW:HIGH:log"):
        parse_weight_flags(["ewc.lambda=1:9:exp"])
    with pytest.raises(ValueError, match="STRATEGY.KEY=LOW:HIGH"):
        parse_weight_flags(["lwf-ssl.lambda=3"])


def test_ewc_lambda_is_searched_log_uniformly():
    import random

    space = weight_space("ewc")
    assert space.ranges == {"ewc.lambda": (1e3, 1e7, "log")}
    rng = random.Random(0)
    draws = sorted(space.sample(rng)["ewc.lambda"] for _ in range(2000))
    # Median at the geometric middle 1e5 (a linear range would put it near 5e6).
    assert 10**4.8 < draws[len(draws) // 2] < 10**5.2


def test_a_log_range_survives_evolve_json(tmp_path, tiny_bench):
    from cl_ssl.evolve.run import make_settings, save_settings
    from cl_ssl.evolve.search import EvolveConfig

    bench = tiny_bench("ewc")
    bench = replace(bench, stream_options=replace(bench.stream_options, val_fraction=0.2))
    save_settings(make_settings(bench, [], EvolveConfig()), tmp_path)
    assert load_settings(tmp_path).ranges == {"ewc.lambda": (1e3, 1e7, "log")}


def test_evolve_writes_every_output_and_the_winners_command(tmp_path):
    result = CliRunner().invoke(
        app,
        ["evolve", "--rounds", "2", "--population", "2", "--tournament", "2",
         "--strategy", "lwf-ssl", *TINY, "--out", str(tmp_path), "--run", "evo"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    directory = tmp_path / "evo"
    history = pd.read_csv(directory / "history.csv")
    assert list(history["id"]) == [0, 1, 2, 3]
    assert history["fitness"].between(0, 1).all()  # NMI on the validation splits
    best = json.loads((directory / "best.json").read_text())
    assert best["best"]["fitness"] == pytest.approx(history["fitness"].max())
    # The command reruns the winner on the test splits: no --val-fraction, the weight set.
    command = shlex.split(best["command"])
    assert "--val-fraction" not in " ".join(command)
    lam = best["best"]["weights"]["lwf-ssl.lambda"]
    assert f"--opt=lwf-ssl.lambda={lam!r}" in command
    for name in ("weights.png", "state.json", "evolve.json"):
        assert (directory / name).stat().st_size > 0
    assert any((directory / "tensorboard").iterdir())
    # Each individual trained with its own weight, evaluated on the validation splits.
    for _, row in history.iterrows():
        folder = directory / "individuals" / f"{int(row['id']):03d}"
        text = next(folder.rglob("config.json")).read_text()
        assert '"val_fraction": 0.2' in text
        assert repr(float(row["lwf-ssl.lambda"])) in text


def test_mixing_weights_of_ssl_objectives_are_searched_as_method_options(tmp_path):
    result = CliRunner().invoke(
        app,
        ["evolve", "--rounds", "1", "--population", "2", "--tournament", "2",
         "--strategy", "naive", "--method", "simclr+vicreg", "--method-opt",
         "vicreg.hidden-dim=32", "--method-opt", "vicreg.output-dim=16", *TINY,
         "--out", str(tmp_path), "--run-name", "mix"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    directory = tmp_path / "mix"
    history = pd.read_csv(directory / "history.csv")
    for _, row in history.iterrows():
        folder = directory / "individuals" / f"{int(row['id']):03d}"
        options = json.loads(next(folder.rglob("config.json")).read_text())["train"][
            "method_options"
        ]
        assert options["simclr"] == {"weight": repr(float(row["simclr.weight"]))}
        assert options["vicreg"]["weight"] == repr(float(row["vicreg.weight"]))
        assert options["vicreg"]["hidden-dim"] == "32"  # the user's own options are kept
    best = json.loads((directory / "best.json").read_text())
    command = shlex.split(best["command"])
    weight = best["best"]["weights"]["vicreg.weight"]
    assert f"--method-opt=vicreg.weight={weight!r}" in command
    assert "--method-opt" in command and not any(a.startswith("--opt=") for a in command)
    assert "--run-name" not in command  # the winner's bench writes a run of its own


def test_fitness_is_never_measured_on_test_splits(tmp_path):
    result = CliRunner().invoke(
        app,
        ["evolve", "--strategy", "lwf-ssl", *TINY, "--val-fraction", "0", "--out", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "validation data only" in result.output
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--population", "2"],  # the default --tournament 3 no longer fits
            "error: --tournament 3 must be in [2, --population 2] (parents are drawn from the "
            "population): pass a --tournament of at most 2 or a --population of at least 3",
        ),
        (
            ["--tournament", "1"],
            "error: --tournament 1 must be in [2, --population 6] (parents are drawn from the "
            "population): pass --tournament 2 or more",
        ),
        (["--population", "1"], "error: --population must be at least 2, got 1"),
    ],
)
def test_search_flags_that_do_not_fit_name_the_flag_and_the_fix(tmp_path, flags, message):
    result = CliRunner().invoke(
        app, ["evolve", *flags, "--strategy", "lwf-ssl", *TINY, "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [message]
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_an_interrupted_evolve_resumes_to_the_uninterrupted_history(tmp_path):
    runner = CliRunner()
    args = ["evolve", "--rounds", "2", "--population", "2", "--tournament", "2",
            "--strategy", "lwf-ssl", *TINY, "--out", str(tmp_path)]  # fmt: skip
    assert runner.invoke(app, [*args, "--run", "whole"]).exit_code == 0
    whole = pd.read_csv(tmp_path / "whole" / "history.csv")

    class Stop(KeyboardInterrupt):
        pass

    def stop_after_two(individual):
        if individual.id == 1:
            raise Stop

    settings = load_settings(tmp_path / "whole")
    cut = EvolveSettings(
        settings.bench.__class__(**{**settings.bench.__dict__, "run_name": "cut"}),
        settings.bench_args,
        settings.search,
        settings.ranges,
        settings.fitness,
    )
    with pytest.raises(Stop):
        run_evolve(cut, on_individual=stop_after_two)
    assert len(pd.read_csv(tmp_path / "cut" / "history.csv")) == 2
    resume = ["evolve", "--resume", str(tmp_path / "cut")]
    changed = runner.invoke(app, [*resume, "--epochs", "2"])
    assert changed.exit_code == 2 and "reruns the saved settings: drop --epochs 2" in (
        changed.output
    )
    # --no-progress, as the search was started with (and as `bench --resume` accepts it).
    again = runner.invoke(app, [*resume, "--no-progress"])
    assert again.exit_code == 0, again.output
    resumed = pd.read_csv(tmp_path / "cut" / "history.csv")
    columns = ["id", "round", "parent", "mutated", "fitness", "lwf-ssl.lambda"]
    pd.testing.assert_frame_equal(resumed[columns], whole[columns])
    # A finished directory is never started over, and other results are never written into.
    assert runner.invoke(app, [*args, "--run", "whole"]).exit_code == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "summary.md").write_text("a bench's results")
    refused = runner.invoke(app, [*args, "--run", "other"])
    assert refused.exit_code == 2 and "not empty" in refused.output


def test_fitness_figures_match_their_definitions():
    from cl_ssl.evolve.run import fitness_of

    rows = []
    # R[i][j] of all_knn20 on two experiences, plus the union row after each experience.
    matrix = {(0, 0): 0.6, (0, 1): 0.2, (1, 0): 0.5, (1, 1): 0.7}
    for (i, j), value in matrix.items():
        rows.append(("s", 0, "all_knn20", i, j, value))
    rows += [("s", 0, "all_knn20", 0, -1, 0.4), ("s", 0, "all_knn20", 1, -1, 0.62)]
    rows += [("s", 0, "all_nmi", 1, -1, 0.33), ("s", 0, "all_nmi", 1, 0, 0.3)]
    rows += [("s", 0, "all_nmi", 1, 1, 0.3)]
    tidy = pd.DataFrame(
        rows, columns=["strategy", "seed", "metric", "train_exp", "eval_exp", "value"]
    )
    assert fitness_of(tidy, "knn") == pytest.approx(0.62)  # final, on the union
    # forgetting: experience 0 fell from its best 0.6 to 0.5 (the last one cannot forget)
    assert fitness_of(tidy, "knn-stable") == pytest.approx(0.62 - 0.1)
    assert fitness_of(tidy, "nmi") == pytest.approx(0.33)


def test_parallel_individuals_score_as_they_would_in_process(tmp_path):
    from cl_ssl.evolve.run import BenchFitness

    args = ["evolve", "--rounds", "1", "--population", "2", "--tournament", "2", "--jobs", "2",
            "--launcher", "local", "--threads-per-job", "1", "--strategy", "lwf-ssl", *TINY,
            "--out", str(tmp_path), "--run", "par"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    history = pd.read_csv(tmp_path / "par" / "history.csv")
    assert list(history["id"]) == [0, 1, 2]
    again = BenchFitness(load_settings(tmp_path / "par"), tmp_path / "again")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker computes
    try:
        for _, row in history.iterrows():  # the sequential scores, individual by individual
            weights = {"lwf-ssl.lambda": float(row["lwf-ssl.lambda"])}
            assert again(weights, int(row["id"])) == row["fitness"]
    finally:
        torch.set_num_threads(threads)


def test_jobs_without_a_launcher_still_mean_local_processes():
    from cl_ssl.config import BenchConfig, StreamOptions
    from cl_ssl.evolve.run import launcher_bench, make_settings
    from cl_ssl.evolve.search import EvolveConfig

    bench = BenchConfig("digits-periods", "lwf-ssl", stream_options=StreamOptions(val_fraction=0.2))
    assert launcher_bench(make_settings(bench, [], EvolveConfig(jobs=2))).launcher == "local"
    assert launcher_bench(make_settings(bench, [], EvolveConfig(jobs=1))).launcher == "inline"
    on_ray = replace(bench, launcher="ray")
    assert launcher_bench(make_settings(on_ray, [], EvolveConfig(jobs=2))).launcher == "ray"
