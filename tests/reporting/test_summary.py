import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cl_ssl.reporting.summary import headline_table, interval, summary_stats

R_GOOD = [[0.9, 0.1], [0.8, 0.9]]  # keeps experience 0
R_FORGETS = [[0.9, 0.1], [0.3, 0.95]]
R_STIFF = [[0.9, 0.1], [0.9, 0.2]]  # forgets nothing, learns nothing new


def test_rows_are_ranked_by_final_all_classes_accuracy_with_stability_and_plasticity(tidy_rows):
    tidy = tidy_rows
    frame = pd.DataFrame(
        tidy("naive", R_FORGETS, 0.62) + tidy("lwf", R_GOOD, 0.85) + tidy("stiff", R_STIFF, 0.55)
    )
    table = headline_table(frame, numeric=True).set_index("strategy")
    assert list(table.index) == ["lwf", "naive", "stiff"]
    assert table.loc["lwf", "final acc (all-classes linear)"] == pytest.approx(0.85)
    assert table.loc["naive", "forgetting"] == pytest.approx(0.6)
    assert table.loc["stiff", "forgetting"] == pytest.approx(0.0)
    # The stiff strategy "forgets nothing" but its plasticity gives it away.
    assert table.loc["stiff", "plasticity"] == pytest.approx((0.9 + 0.2) / 2)
    assert table.loc["naive", "plasticity"] == pytest.approx((0.9 + 0.95) / 2)
    assert table.loc["lwf", "avg incremental acc"] == pytest.approx((0.9 + 0.85) / 2)


def test_several_seeds_give_mean_std_and_a_student_t_interval(tidy_rows):
    tidy = tidy_rows
    frame = pd.DataFrame(
        [row for seed, u in enumerate([0.5, 0.6, 0.7]) for row in tidy("a", R_GOOD, u, seed)]
    )
    table = headline_table(frame)
    assert table.loc[0, "seeds"] == 3
    assert table.loc[0, "final acc (all-classes linear)"] == "0.600 ± 0.100"
    half = stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3)  # 4.303 * 0.0577 = 0.248
    assert table.loc[0, "95% CI"] == f"[{0.6 - half:.3f}, {0.6 + half:.3f}]"
    row = summary_stats(frame).set_index("column").loc["final acc (all-classes linear)"]
    assert row["n"] == 3 and row["std"] == pytest.approx(0.1)
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((0.6 - half, 0.6 + half))
    assert np.isnan(interval(pd.Series([0.4]))[0])
