import pandas as pd
import pytest

from cl_ssl.bench import run_bench
from cl_ssl.evaluation.continual import backward_transfer
from cl_ssl.reporting.tables import TIDY_COLUMNS


def test_same_seed_gives_identical_matrices(tiny_bench):
    first = run_bench(tiny_bench()).strategies[0].loss_matrix
    second = run_bench(tiny_bench()).strategies[0].loss_matrix
    assert first.shape == (5, 5)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    other_seed = run_bench(tiny_bench(seed=1)).strategies[0].loss_matrix
    assert not other_seed.equals(first)


def test_run_directory_holds_events_tidy_csv_and_summary(tiny_bench):
    config = tiny_bench()
    result = run_bench(config)
    directory = config.out / "test" / "naive" / "seed0"
    assert list(directory.glob("events.out.tfevents.*"))
    tidy = pd.read_csv(directory / "metrics.csv")
    assert list(tidy.columns) == TIDY_COLUMNS
    # One untrained row (-1) plus one row per experience, each over all 5 test sets.
    assert sorted(tidy["train_exp"].unique()) == [-1, 0, 1, 2, 3, 4]
    scores = {"knn20", "knn200", "linear", "nmi", "ari"}
    protocols = {f"{p}_{s}" for p in ("all", "exp") for s in scores}
    health = {"all_stdratio", "all_effrank", "all_uniformity"}  # of the test features
    assert set(tidy["metric"]) == {"ssl_loss"} | protocols | health
    per_split = tidy[tidy["eval_exp"] >= 0]
    assert (per_split.groupby("metric").size() == 6 * 5).all()
    # The all-classes protocol adds one row per pass on the union of the test splits.
    union = tidy[tidy["eval_exp"] == -1]
    assert set(union["metric"]) == {f"all_{s}" for s in scores} | health
    assert (union.groupby("metric").size() == 6).all()
    text = (config.out / "test" / "summary.md").read_text()
    assert "all-classes protocol" in text and "\n| strategy" in text
    summary = result.summary()
    assert summary.loc[0, "ms/step"] > 0
    assert 0 < summary.loc[0, "images/step"] <= 32
    assert summary.loc[0, "final SSL loss"] == pytest.approx(
        result.strategies[0].loss_matrix.iloc[-1].mean()
    )


def test_unknown_strategy_fails_before_loading_data(tiny_bench):
    with pytest.raises(KeyError, match="unknown strategy 'nope'; choose from: .*naive"):
        run_bench(tiny_bench("naive,nope"))


def test_loss_rise_on_old_experiences_by_hand():
    matrix = pd.DataFrame([[1.0, 5.0, 5.0], [2.0, 1.0, 5.0], [3.0, 1.5, 1.0]])
    # (3 - 1) and (1.5 - 1) averaged over the two earlier experiences.
    assert backward_transfer(matrix.to_numpy()) == pytest.approx(1.25)


def test_seeds_run_every_strategy_on_the_same_data_and_report_the_spread(tiny_bench):
    from dataclasses import replace

    config = replace(tiny_bench("naive"), training_seeds=(0, 1))
    result = run_bench(config)
    assert [(r.name, r.seed) for r in result.strategies] == [("naive", 0), ("naive", 1)]
    directory = config.out / "test" / "naive"
    assert sorted(p.name for p in directory.iterdir()) == ["seed0", "seed1"]
    import json

    configs = [json.loads((directory / s / "config.json").read_text()) for s in ("seed0", "seed1")]
    assert [c["train"]["seed"] for c in configs] == [0, 1]
    assert configs[0]["stream_options"] == configs[1]["stream_options"]
    losses = [r.loss_matrix for r in result.strategies]
    assert not losses[0].equals(losses[1])  # training differs; the data (split seed) do not
    summary = result.summary(numeric=False)
    assert summary.loc[0, "seeds"] == 2 and "95% CI" in summary.columns
    assert (config.out / "test" / "summary_stats.csv").exists()


def test_repeated_seeds_are_refused(tiny_bench):
    from dataclasses import replace

    with pytest.raises(ValueError, match="--seeds repeats a seed"):
        replace(tiny_bench(), training_seeds=(0, 0))


def test_val_fraction_evaluates_on_validation_splits_and_says_so(tiny_bench):
    import json
    from dataclasses import replace

    config = tiny_bench()
    config = replace(config, stream_options=replace(config.stream_options, val_fraction=0.25))
    run_bench(config)
    saved = json.loads((config.out / "test" / "naive" / "seed0" / "config.json").read_text())
    assert saved["eval_split"] == "val" and saved["stream_options"]["val_fraction"] == 0.25
    assert "evaluated on the val splits" in (config.out / "test" / "summary.md").read_text()


def test_a_run_directory_with_results_is_never_silently_reused(tiny_bench):
    from dataclasses import replace

    config = replace(tiny_bench(), overwrite=False)
    run_bench(config)
    directory = config.out / "test"
    (directory / "naive" / "seed0" / "stale.txt").write_text("from an older run")
    with pytest.raises(ValueError, match="holds results: pass --resume .* --overwrite to replace"):
        run_bench(config)
    run_bench(replace(config, overwrite=True))
    assert not (directory / "naive" / "seed0" / "stale.txt").exists()  # replaced, not mixed


def test_unnamed_runs_started_together_get_their_own_directories(tiny_bench):
    from dataclasses import replace

    from cl_ssl.outputs import make_run_directory

    config = replace(tiny_bench(), run_name=None)
    args = (config.out, None, config.stream, False)
    first, second = make_run_directory(*args), make_run_directory(*args)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.startswith("digits-periods-") and second.name.startswith("digits-periods-")


def test_results_keep_the_count_of_skipped_images(tiny_bench, digit_folder):
    import json
    from dataclasses import replace

    (digit_folder / "3" / "0.png").write_text("not an image")
    config = tiny_bench()
    config = replace(
        config,
        stream="split",
        stream_options=replace(config.stream_options, dataset=str(digit_folder), tasks=2),
    )
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        result = run_bench(config).strategies[0]
    assert json.loads((result.directory / "results.json").read_text())["skipped_images"] == 1
