import numpy as np
import pandas as pd
import pytest

from cl_ssl.evaluation.continual import (
    average_forgetting,
    backward_transfer,
    figures,
    final_average,
    forward_transfer,
    relative_forgetting_pct,
    seen_average,
    tidy_figures,
)

# Accuracy after training experience i (rows) on experience j (columns).
R = np.array(
    [
        [0.80, 0.20, 0.10],
        [0.60, 0.90, 0.30],
        [0.50, 0.70, 0.95],
    ]
)
UNTRAINED = np.array([0.10, 0.15, 0.05])


def test_figures_match_a_hand_computation():
    assert final_average(R) == pytest.approx((0.50 + 0.70 + 0.95) / 3)
    # Forgetting: j=0: max(0.80, 0.60) - 0.50 = 0.30; j=1: max(0.20, 0.90) - 0.70 = 0.20.
    assert average_forgetting(R) == pytest.approx(0.25)
    # BWT: (0.50 - 0.80 + 0.70 - 0.90) / 2.
    assert backward_transfer(R) == pytest.approx(-0.25)
    # FWT: (R[0][1] - b1 + R[1][2] - b2) / 2 = (0.20 - 0.15 + 0.30 - 0.05) / 2.
    assert forward_transfer(R, UNTRAINED) == pytest.approx(0.15)
    # Relative: (0.30 / 0.80 + 0.20 / 0.90) / 2 in %.
    assert relative_forgetting_pct(R) == pytest.approx(100 * (0.30 / 0.80 + 0.20 / 0.90) / 2)
    assert seen_average(R) == pytest.approx([0.80, 0.75, (0.50 + 0.70 + 0.95) / 3])


def test_a_loss_counts_forgetting_as_its_rise():
    loss = np.array([[2.0, 4.0], [2.5, 1.5]])
    assert average_forgetting(loss, higher_is_better=False) == pytest.approx(0.5)
    assert relative_forgetting_pct(loss, higher_is_better=False) == pytest.approx(25.0)
    assert backward_transfer(loss) == pytest.approx(0.5)
    assert figures(loss, None, "ssl_loss")["forgetting_pct"] == pytest.approx(25.0)


def test_no_forgetting_without_a_second_experience():
    single = np.array([[0.9]])
    assert np.isnan(average_forgetting(single)) and np.isnan(backward_transfer(single))


def test_tidy_rows_give_the_same_figures():
    rows = [
        {"strategy": "s", "seed": 0, "metric": "knn20", "train_exp": i, "eval_exp": j, "value": v}
        for i, row in enumerate(R)
        for j, v in enumerate(row)
    ]
    rows += [
        {"strategy": "s", "seed": 0, "metric": "knn20", "train_exp": -1, "eval_exp": j, "value": v}
        for j, v in enumerate(UNTRAINED)
    ]
    table = tidy_figures(pd.DataFrame(rows)).set_index("metric")
    assert table.loc["knn20", "forgetting"] == pytest.approx(0.25)
    assert table.loc["knn20", "fwt"] == pytest.approx(0.15)


def test_plasticity_and_average_incremental_by_hand():
    from cl_ssl.evaluation.continual import average_incremental, plasticity

    assert plasticity(R) == pytest.approx((0.80 + 0.90 + 0.95) / 3)
    seen = [0.80, (0.60 + 0.90) / 2, (0.50 + 0.70 + 0.95) / 3]
    assert average_incremental(R) == pytest.approx(sum(seen) / 3)


def test_union_rows_stay_out_of_the_matrix_and_give_final_union():
    rows = [
        {
            "strategy": "s",
            "seed": 0,
            "metric": "all_linear",
            "train_exp": i,
            "eval_exp": j,
            "value": v,
        }
        for i, row in enumerate(R)
        for j, v in enumerate(row)
    ]
    # The union of the test splits, after each experience (eval_exp == -1).
    rows += [
        {
            "strategy": "s",
            "seed": 0,
            "metric": "all_linear",
            "train_exp": i,
            "eval_exp": -1,
            "value": v,
        }
        for i, v in enumerate([0.3, 0.6, 0.72])
    ]
    table = tidy_figures(pd.DataFrame(rows)).set_index("metric")
    assert table.loc["all_linear", "final_union"] == pytest.approx(0.72)
    assert table.loc["all_linear", "final"] == pytest.approx(final_average(R))
    # Stopped after experience 1 of 3 (the untrained model evaluated all three): no final
    # figure, neither on the union nor on the splits, whatever was reached so far.
    baseline = [{**row, "train_exp": -1} for row in rows if row["train_exp"] == 0]
    stopped = pd.DataFrame([*baseline, *(row for row in rows if row["train_exp"] <= 1)])
    table = tidy_figures(stopped).set_index("metric")
    assert np.isnan(table.loc["all_linear", "final_union"])
    assert np.isnan(table.loc["all_linear", "final"])


@pytest.mark.parametrize("metric", ["all_ari", "exp_nmi"])
def test_scores_zero_at_chance_have_no_relative_forgetting(metric):
    R = np.array([[0.0, 0.1], [0.2, 0.3]])  # a reference of 0: chance level
    result = figures(R, None, metric)
    assert np.isnan(result["forgetting_pct"]) and result["forgetting"] == pytest.approx(-0.2)
    assert not np.isnan(figures(R + 0.5, None, "all_linear")["forgetting_pct"])
