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
    directory = config.out / "test" / "naive"
    assert list(directory.glob("events.out.tfevents.*"))
    tidy = pd.read_csv(directory / "metrics.csv")
    assert list(tidy.columns) == TIDY_COLUMNS
    # One untrained row (-1) plus one row per experience, each over all 5 test sets.
    assert sorted(tidy["train_exp"].unique()) == [-1, 0, 1, 2, 3, 4]
    assert set(tidy["metric"]) == {"ssl_loss", "knn20", "knn200", "linear", "nmi", "ari"}
    assert (tidy.groupby("metric").size() == 6 * 5).all()
    assert (config.out / "test" / "summary.md").read_text().startswith("| strategy")
    summary = result.summary()
    assert summary.loc[0, "images/s"] > 0 and summary.loc[0, "ms/step"] > 0
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
