"""``clssl bench --method a,b``: every method x strategy x seed, methods kept apart."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from cl_ssl.bench import run_bench
from cl_ssl.cli import app
from cl_ssl.reporting.summary import method_column


def test_a_method_grid_runs_each_method_as_its_own_bench_would(tiny_bench):
    grid = tiny_bench(
        "naive", method="simclr,byol", method_options={"simclr": {"temperature": "0.2"}}
    )
    result = run_bench(grid)
    assert result.ok
    directory = grid.out / grid.run_name
    assert [r.name for r in result.strategies] == ["naive [simclr]", "naive [byol]"]
    for method, options in (("simclr", {"simclr": {"temperature": "0.2"}}), ("byol", {})):
        run = directory / "naive" / method / "seed0"
        train = json.loads((run / "config.json").read_text())["train"]
        assert (train["method"], train["method_options"]) == (method, options)
    assert not (directory / "naive" / "seed0").exists()

    # simclr's run of the grid is the plain simclr bench's run, figure for figure.
    plain = tiny_bench("naive", method_options={"simclr": {"temperature": "0.2"}})
    plain = run_bench(type(plain)(**{**plain.__dict__, "run_name": "plain"}))
    pd.testing.assert_frame_equal(
        pd.read_csv(directory / "naive" / "simclr" / "seed0" / "metrics.csv"),
        pd.read_csv(plain.directory / "naive" / "seed0" / "metrics.csv"),
    )

    summary = pd.read_csv(directory / "summary.csv")
    assert list(summary.columns[:2]) == ["method", "strategy"]
    assert sorted(zip(summary["method"], summary["strategy"], strict=True)) == [
        ("byol", "naive"),
        ("simclr", "naive"),
    ]
    simclr = summary.set_index("method").loc["simclr"]
    expected = plain.summary().iloc[0]
    assert simclr["final acc (all-classes linear)"] == expected["final acc (all-classes linear)"]

    out = grid.out / "report"
    report = CliRunner().invoke(app, ["report", str(directory), "--out", str(out)])
    assert report.exit_code == 0, report.output
    table = pd.read_csv(out / "report.csv")
    assert sorted(zip(table["method"], table["strategy"], strict=True)) == [
        ("byol", "naive"),
        ("simclr", "naive"),
    ]


def test_one_method_keeps_the_plain_layout_and_table(tiny_bench):
    result = run_bench(tiny_bench("naive"))
    assert (result.directory / "naive" / "seed0" / "metrics.csv").is_file()
    assert "method" not in result.summary().columns
    assert result.strategies[0].name == "naive"


def test_method_column_splits_grid_labels_and_leaves_other_tables():
    table = pd.DataFrame(
        {"strategy": ["naive [byol]", "ewc [simclr]", "naive [simclr]"], "acc": [3, 2, 1]}
    )
    split = method_column(table)
    assert split.to_dict("list") == {
        "method": ["byol", "simclr", "simclr"],
        "strategy": ["naive", "ewc", "naive"],
        "acc": [3, 2, 1],
    }
    plain = pd.DataFrame({"strategy": ["lwf-ssl (mode=relational)"], "acc": [1]})
    assert method_column(plain) is plain


def test_a_method_option_of_no_method_in_the_grid_is_refused(tmp_path):
    result = CliRunner().invoke(
        app,
        ["bench", "--stream", "digits-periods", "--method", "simclr,byol",
         "--method-opt", "vicreg.sim-coeff=1", "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--method-opt vicreg.* given but the method is 'simclr,byol'" in result.output
