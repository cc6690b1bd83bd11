import pandas as pd
import pytest
from scipy import stats

from cl_ssl.reporting import paired
from cl_ssl.reporting.summary import figures_by_seed, method_label

R = [[0.9, 0.1], [0.8, 0.9]]


# final accuracies per seed: naive, joint, replay; replay misses seed 3
FINALS = {
    0: (0.60, 0.70, 0.64),
    1: (0.70, 0.72, 0.71),
    2: (0.65, 0.73, 0.69),
    3: (0.50, 0.90, None),
}


@pytest.fixture
def frame(tidy_rows):
    """frame(label): the tidy rows of naive, joint and replay per seed, named by ``label``."""

    def make(label=lambda s: s) -> pd.DataFrame:
        rows = []
        for seed, (naive, joint, replay) in FINALS.items():
            rows += tidy_rows(label("naive"), R, naive, seed) + tidy_rows(
                label("joint"), R, joint, seed
            )
            if replay is not None:
                rows += tidy_rows(
                    label("replay"), [R[0], [R[1][0], 0.9 + seed / 100]], replay, seed
                )
        return pd.DataFrame(rows)

    return make


def cell(table: pd.DataFrame, strategy: str, column: str) -> pd.Series:
    return table.set_index(["strategy", "column"]).loc[(strategy, column)]


def test_differences_are_paired_by_seed_with_a_student_t_interval(frame):
    table = paired.paired_figures(figures_by_seed(frame()))
    final = cell(table, "replay", "final acc (all-classes linear) − naive")
    differences = pd.Series([0.04, 0.01, 0.04])  # seeds 0-2; seed 3 has no replay run
    half = stats.t.ppf(0.975, 2) * differences.std(ddof=1) / 3**0.5
    assert final["n"] == 3
    assert final["mean"] == pytest.approx(0.03)
    assert (final["ci95_low"], final["ci95_high"]) == pytest.approx((0.03 - half, 0.03 + half))
    # plasticity = mean(R[0][0], R[1][1]): replay's R[1][1] is 0.9 + seed/100, naive's 0.9
    plastic = cell(table, "replay", "plasticity − naive")
    assert plastic["mean"] == pytest.approx((0.00 + 0.01 + 0.02) / 3 / 2)
    # gap as a ratio of means over seeds 0-2: 0.03 / mean(0.10, 0.02, 0.08)
    assert cell(table, "replay", paired.GAP_TITLE)["mean"] == pytest.approx(0.03 / (0.20 / 3))
    assert cell(table, "joint", paired.GAP_TITLE)["mean"] == pytest.approx(1.0)
    assert "naive" not in set(table["strategy"])


def test_a_grid_pairs_each_strategy_with_the_naive_run_of_its_own_method(frame):
    both = pd.concat(
        [
            frame(lambda s: method_label(s, "simclr")),
            frame(lambda s: method_label(s, "byol")).assign(
                value=lambda f: f["value"].where(
                    ~f["strategy"].str.startswith("naive"), f["value"] - 0.1
                )
            ),
        ]
    )
    table = paired.paired_figures(figures_by_seed(both))
    column = "final acc (all-classes linear) − naive"
    assert cell(table, "replay [simclr]", column)["mean"] == pytest.approx(0.03)
    assert cell(table, "replay [byol]", column)["mean"] == pytest.approx(0.13)


def test_the_table_reads_difference_and_interval_and_puts_the_gap_last(frame):
    table = paired.paired_table(
        paired.paired_figures(figures_by_seed(frame())), ["replay", "joint"]
    )
    assert list(table["strategy"]) == ["replay", "joint"]
    assert table.columns[-1] == paired.GAP_TITLE
    assert table.loc[0, "final acc (all-classes linear) − naive"].startswith("+0.030 [")
    assert table.loc[0, paired.GAP_TITLE] == "0.45"


def test_without_naive_there_is_nothing_to_pair(frame):
    without = frame()
    assert paired.paired_figures(figures_by_seed(without[without["strategy"] != "naive"])).empty
