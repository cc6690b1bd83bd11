import pytest


def matrix_rows(strategy: str, R, union: float, seed: int = 0) -> list[dict]:
    """Tidy ``all_linear`` rows of one run: R[i][j] after experience i, and its union after
    the last experience (``eval_exp`` -1)."""
    rows = [
        {"strategy": strategy, "seed": seed, "metric": "all_linear", "train_exp": i,
         "eval_exp": j, "value": v}
        for i, row in enumerate(R)
        for j, v in enumerate(row)
    ]  # fmt: skip
    last = {"train_exp": len(R) - 1, "eval_exp": -1, "value": union}
    return [*rows, {"strategy": strategy, "seed": seed, "metric": "all_linear", **last}]


@pytest.fixture
def tidy_rows():
    """:func:`matrix_rows`: a run's tidy rows from its matrix (tests of the summaries)."""
    return matrix_rows
