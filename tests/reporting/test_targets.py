"""`make check-results`: a bench's summary figures against committed targets."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from cl_ssl.reporting.targets import FLOORS, app, check, load_targets, write_targets

KNN = "final acc (all-classes kNN-20)"
LOSS = "SSL-loss forgetting %"


def bench_dir(tmp_path, rows, name="bench"):
    """A bench directory whose summary_stats.csv holds ``rows`` (strategy, column, mean, std)."""
    directory = tmp_path / name
    directory.mkdir()
    frame = pd.DataFrame(rows, columns=["strategy", "column", "mean", "std"])
    frame.insert(2, "n", 3)
    frame.to_csv(directory / "summary_stats.csv", index=False)
    return directory


def test_written_targets_are_the_mean_and_three_std_above_the_floor(tmp_path):
    run = bench_dir(
        tmp_path,
        [
            ("naive", KNN, 0.86, 0.001),  # 3 std = 0.003 < floor 0.02
            ("lwf-ssl", KNN, 0.95, 0.01),  # 3 std = 0.03 > floor
            ("lwf-ssl", LOSS, 2.0, None),  # one seed: no std, the floor
            ("lwf-ssl", "ms/step", 40.0, 1.0),  # a cost, never a target
        ],
    )
    path = tmp_path / "targets.csv"

    rows = write_targets(run, "ci", "test", path).set_index(["strategy", "column"])

    assert rows.loc[("naive", KNN), "tolerance"] == FLOORS[KNN] == 0.02
    assert rows.loc[("lwf-ssl", KNN), "tolerance"] == pytest.approx(0.03)
    assert rows.loc[("lwf-ssl", LOSS), "tolerance"] == FLOORS[LOSS]
    assert ("lwf-ssl", "ms/step") not in rows.index
    assert len(load_targets(path, "ci")) == 3


def test_writing_one_tier_keeps_the_others(tmp_path):
    path = tmp_path / "targets.csv"
    write_targets(bench_dir(tmp_path, [("naive", KNN, 0.8, 0.0)], "a"), "full", "x", path)
    write_targets(bench_dir(tmp_path, [("naive", KNN, 0.9, 0.0)], "b"), "ci", "y", path)
    write_targets(bench_dir(tmp_path, [("naive", KNN, 0.7, 0.0)], "c"), "ci", "z", path)

    assert load_targets(path, "full")["mean"].tolist() == [0.8]
    assert load_targets(path, "ci")["mean"].tolist() == [0.7]
    assert not list(tmp_path.glob("*.partial"))


def test_a_tier_can_take_some_strategies_of_a_larger_run(tmp_path):
    run = bench_dir(tmp_path, [("naive", KNN, 0.8, 0.01), ("cassle", KNN, 0.9, 0.01)])
    path = tmp_path / "targets.csv"

    assert write_targets(run, "ci", "", path, ("naive",))["strategy"].tolist() == ["naive"]
    with pytest.raises(ValueError, match=r"did not measure \['pnr'\]"):
        write_targets(run, "ci", "", path, ("naive", "pnr"))


def test_a_figure_outside_its_tolerance_is_named_with_both_values(tmp_path):
    path = tmp_path / "targets.csv"
    write_targets(
        bench_dir(tmp_path, [("naive", KNN, 0.866, 0.0), ("lwf-ssl", KNN, 0.955, 0.0)], "ref"),
        "ci",
        "",
        path,
    )
    targets = load_targets(path, "ci")
    within = bench_dir(tmp_path, [("naive", KNN, 0.88, 0.0), ("lwf-ssl", KNN, 0.94, 0.0)], "ok")
    # LwF-SSL with its term disabled trains as naive does.
    disabled = bench_dir(
        tmp_path, [("naive", KNN, 0.866, 0.0), ("lwf-ssl", KNN, 0.866, 0.0)], "off"
    )

    assert check(within, targets) == []
    assert check(disabled, targets) == [
        "lwf-ssl: final acc (all-classes kNN-20) = 0.866, target 0.955 ± 0.02"
    ]


def test_a_strategy_that_did_not_finish_misses_its_targets(tmp_path):
    path = tmp_path / "targets.csv"
    write_targets(
        bench_dir(tmp_path, [("naive", KNN, 0.8, 0.0), ("lwf-ssl", KNN, 0.9, 0.0)], "ref"),
        "ci",
        "",
        path,
    )
    partial = bench_dir(tmp_path, [("naive", KNN, 0.8, 0.0)], "partial")

    (line,) = check(partial, load_targets(path, "ci"))
    assert line.startswith("lwf-ssl: final acc (all-classes kNN-20) was not measured")


def test_the_command_exits_1_on_a_miss_and_2_on_bad_input(tmp_path):
    path = tmp_path / "targets.csv"
    reference = bench_dir(tmp_path, [("lwf-ssl", KNN, 0.955, 0.0)], "ref")
    runner = CliRunner()
    wrote = runner.invoke(app, [str(reference), "--tier", "ci", "--targets", str(path), "--write"])
    assert wrote.exit_code == 0, wrote.output
    held = runner.invoke(app, [str(reference), "--tier", "ci", "--targets", str(path)])
    assert held.exit_code == 0 and "1 of 1 'ci' targets hold" in held.output
    off = bench_dir(tmp_path, [("lwf-ssl", KNN, 0.5, 0.0)], "off")
    missed = runner.invoke(app, [str(off), "--tier", "ci", "--targets", str(path)])
    assert missed.exit_code == 1
    assert "MISSED lwf-ssl: final acc (all-classes kNN-20) = 0.5, target 0.955" in missed.output
    unknown = runner.invoke(app, [str(off), "--tier", "gpu", "--targets", str(path)])
    assert (
        unknown.exit_code == 2 and "has no targets for tier 'gpu'; it has ['ci']" in unknown.output
    )
    nothing = runner.invoke(app, [str(tmp_path), "--tier", "ci", "--targets", str(path)])
    assert nothing.exit_code == 2 and "is not a finished bench directory" in nothing.output
