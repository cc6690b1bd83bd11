import pandas as pd
import pytest
from scipy import stats

from cl_ssl.reporting import gap
from cl_ssl.reporting.summary import figures_by_seed, headline_table, summary_stats

R = [[0.9, 0.1], [0.8, 0.9]]


# final accuracies per seed: naive, joint, lwf
FINALS = {0: (0.40, 0.60, 0.50), 1: (0.42, 0.52, 0.50), 2: (0.38, 0.58, 0.43)}


@pytest.fixture
def frame(tidy_rows):
    """frame(finals): the tidy rows of naive, joint and lwf per seed."""

    def make(finals=FINALS) -> pd.DataFrame:
        rows = []
        for seed, (naive, joint, lwf) in finals.items():
            for strategy, union in (("naive", naive), ("joint", joint), ("lwf", lwf)):
                rows += tidy_rows(strategy, R, union, seed)
        return pd.DataFrame(rows)

    return make


def test_shares_are_paired_per_seed(frame):
    shares = gap.gap_shares(figures_by_seed(frame()), "all_linear")
    expected = [(0.50 - 0.40) / 0.20, (0.50 - 0.42) / 0.10, (0.43 - 0.38) / 0.20]
    assert list(shares["lwf"]) == pytest.approx(expected)
    assert list(shares["naive"]) == pytest.approx([0, 0, 0])
    assert list(shares["joint"]) == pytest.approx([1, 1, 1])


def test_the_summary_carries_the_share_with_a_student_t_interval(frame):
    stats_table = summary_stats(frame()).set_index(["strategy", "column"])
    cell = stats_table.loc[("lwf", gap.TITLE)]
    values = pd.Series([0.5, 0.8, 0.25])
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / 3**0.5
    assert cell["n"] == 3
    assert cell["mean"] == pytest.approx(values.mean())
    assert cell["ci95_low"] == pytest.approx(values.mean() - half)
    assert cell["ci95_high"] == pytest.approx(values.mean() + half)
    shown = headline_table(frame()).set_index("strategy").loc["lwf", gap.TITLE]
    assert shown == f"{values.mean():.2f} [{values.mean() - half:.2f}, {values.mean() + half:.2f}]"


def test_a_seed_without_a_gap_gives_no_share_and_without_references_no_column(frame):
    finals = {**FINALS, 1: (0.50, 0.45, 0.50)}  # joint below naive in seed 1
    shares = gap.gap_shares(figures_by_seed(frame(finals)), "all_linear")
    assert list(shares["lwf"].index) == [0, 2]
    no_joint = frame()[lambda d: d.strategy != "joint"]
    assert gap.TITLE not in headline_table(no_joint).columns
    assert gap.gap_shares(figures_by_seed(no_joint), "all_linear") == {}
