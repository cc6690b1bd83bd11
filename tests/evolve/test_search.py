"""The evolutionary search core: convergence, determinism, resume, selection, failures, outputs."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import statistics
from pathlib import Path

import pytest

from cl_ssl.evolve import (
    EvolutionarySearch,
    EvolveConfig,
    Individual,
    WeightSpace,
    best_per_round,
    history_frame,
    log_tensorboard,
    plot_weight_heatmap,
    write_history_csv,
)

SPACE = WeightSpace({"w1": (0.0, 1.0), "w2": (0.0, 1.0)})
OPTIMUM = (0.7, 0.2)


def toy(weights: dict[str, float], ident: int) -> float:
    return -((weights["w1"] - OPTIMUM[0]) ** 2) - (weights["w2"] - OPTIMUM[1]) ** 2


def search(rounds: int = 30, seed: int = 0, fitness=toy, **config) -> EvolutionarySearch:
    return EvolutionarySearch(SPACE, EvolveConfig(rounds=rounds, seed=seed, **config), fitness)


@pytest.mark.parametrize("seed", range(5))
def test_the_toy_optimum_is_approached(seed):
    s = search(rounds=30, seed=seed)
    history = s.run()
    assert len(history) == 6 + 30
    assert [ind.id for ind in history] == list(range(36))
    initial_best = max(ind.fitness for ind in history if ind.round == 0)
    assert s.best.fitness > initial_best
    # 36 uniform draws land within 0.07 of the optimum for ~40% of seeds; evolution, always.
    assert math.dist((s.best.weights["w1"], s.best.weights["w2"]), OPTIMUM) < 0.07
    assert s.best == max(history, key=lambda ind: ind.fitness)  # elitist: best ever is kept


def test_same_seed_same_history_other_seed_other_history():
    first, second, other = search(seed=3).run(), search(seed=3).run(), search(seed=4).run()
    assert first == second
    assert [ind.weights for ind in first] == [ind.weights for ind in second]
    assert first != other


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path: Path):
    whole = search(rounds=12, seed=7).run()

    state = tmp_path / "state.json"
    part = search(rounds=12, seed=7)
    part.run(rounds=5, state_path=state)
    assert part.rounds_done == 5 and not part.finished
    json.loads(state.read_text())  # strict JSON
    resumed = EvolutionarySearch.resume(state, toy)
    assert resumed.run(state_path=state) == whole
    assert resumed.finished and resumed.rounds_done == 12


def test_a_crash_inside_an_evaluation_resumes_from_the_last_save(tmp_path: Path):
    whole = search(rounds=10, seed=2).run()
    state = tmp_path / "state.json"

    crash_at = [3, 11]  # inside the initial population, then inside round 6; once each

    def crashes(weights, ident):
        if crash_at and ident == crash_at[0]:
            crash_at.pop(0)
            raise KeyboardInterrupt
        return toy(weights, ident)

    with pytest.raises(KeyboardInterrupt):
        search(rounds=10, seed=2, fitness=crashes).run(state_path=state)
    assert not (tmp_path / "state.json.partial").exists()
    resumed = EvolutionarySearch.resume(state, crashes)
    assert len(resumed.history) == 3 and len(resumed.pending) == 3
    with pytest.raises(KeyboardInterrupt):
        resumed.run(state_path=state)
    # The same object goes on too (its random stream was rewound), as does a fresh resume.
    assert len(resumed.history) == 11
    assert resumed.run(rounds=0) == whole[:11]
    assert EvolutionarySearch.resume(state, toy).run() == whole
    assert EvolutionarySearch.resume(state, toy).run(rounds=3) == whole[:14]


def test_resume_may_extend_the_budget_but_not_change_the_search(tmp_path: Path):
    state = tmp_path / "state.json"
    search(rounds=4, seed=1).run(state_path=state)
    longer = EvolutionarySearch.resume(state, toy, EvolveConfig(rounds=9, seed=1))
    assert longer.run() == search(rounds=9, seed=1).run()
    with pytest.raises(ValueError, match="seed"):
        EvolutionarySearch.resume(state, toy, EvolveConfig(rounds=9, seed=2))
    other = EvolutionarySearch(WeightSpace({"w1": (0.0, 2.0), "w2": (0, 1)}), EvolveConfig(), toy)
    with pytest.raises(ValueError, match="weight space"):
        other.load_state_dict(json.loads(state.read_text()))


def test_each_child_mutates_exactly_its_named_weight():
    space = WeightSpace({f"w{i}": (0.0, 1.0) for i in range(5)})
    s = EvolutionarySearch(space, EvolveConfig(rounds=40, seed=5), lambda w, i: sum(w.values()))
    history = s.run()
    changed = 0
    for child in history[6:]:
        parent = history[child.parent]
        assert child.mutated in space.names
        differs = [n for n in space.names if child.weights[n] != parent.weights[n]]
        # Clipping at a bound the parent already sits on may leave the value unchanged.
        assert differs in ([child.mutated], [])
        changed += len(differs)
        assert all(0.0 <= v <= 1.0 for v in child.weights.values())
    assert changed >= 30
    assert {c.mutated for c in history[6:]} == set(space.names)


def run_with_snapshots(config: EvolveConfig):
    """The finished search and the population after every individual."""
    snapshots: list[list[Individual]] = []
    s = EvolutionarySearch(
        SPACE, config, toy, on_individual=lambda ind: snapshots.append(list(s.population))
    )
    s.run()
    return s, snapshots


def test_population_size_is_constant_and_only_a_better_child_replaces_the_worst():
    s, snapshots = run_with_snapshots(EvolveConfig(population=5, tournament=2, rounds=40, seed=11))
    replaced = 0
    for before, after, child in zip(snapshots[4:-1], snapshots[5:], s.history[5:], strict=True):
        assert len(after) == 5
        worst = min(before, key=lambda ind: (ind.fitness, ind.id))
        assert child.parent in {ind.id for ind in before}
        assert child.parent != worst.id  # a 2-tournament never picks the (unique) worst
        if child.fitness > worst.fitness:
            assert after == [child if ind is worst else ind for ind in before]
            replaced += 1
        else:
            assert after == before
    assert 5 <= replaced < 40


def test_a_full_tournament_always_picks_the_best_parent():
    s, snapshots = run_with_snapshots(EvolveConfig(population=4, tournament=4, rounds=15, seed=0))
    for before, child in zip(snapshots[3:], s.history[4:], strict=False):
        assert child.parent == max(before, key=lambda ind: (ind.fitness, -ind.id)).id


def test_a_failing_evaluation_is_recorded_and_the_search_goes_on():
    def flaky(weights, ident):
        if ident in (2, 9):
            raise RuntimeError(f"diverged at {ident}")
        if ident == 10:
            return math.nan
        return toy(weights, ident)

    s = search(rounds=8, fitness=flaky)
    history = s.run()
    assert len(history) == 14 and s.rounds_done == 8
    failed = {ind.id: ind.error for ind in history if ind.failed}
    assert failed.keys() == {2, 9, 10}
    assert failed[2] == "RuntimeError: diverged at 2"
    assert "nan" in failed[10]
    assert all(ind.fitness == -math.inf for ind in history if ind.id in failed)
    assert not any(ind.id in (9, 10) for ind in s.population)  # a failed child never enters
    assert not s.best.failed


def test_every_initial_individual_failing_is_an_error():
    def broken(weights, ident):
        raise ValueError("no data")

    with pytest.raises(RuntimeError, match="all 6 initial individuals failed.*no data"):
        search(fitness=broken).run()


def test_the_wall_budget_stops_the_search():
    ticks = iter(range(10_000))
    s = EvolutionarySearch(
        SPACE, EvolveConfig(rounds=100, max_seconds=30), toy, clock=lambda: next(ticks)
    )
    history = s.run()  # the clock advances by 1 per reading: ~3 readings per individual
    assert 6 < len(history) < 15 and s.seconds >= 30


def test_zero_rounds_evaluates_the_initial_population_only():
    s = search(rounds=0)
    assert [ind.round for ind in s.run()] == [0] * 6 and s.finished


# ------------------------------------------------------------------ parallel evaluation
def one_by_one(batch):
    """An explicit evaluate_batch equal to the default one."""
    return [toy(weights, ident) for weights, ident in batch]


def in_reverse(batch):
    """Computes the last individual first (as a pool may finish it), returns positionally."""
    done = {ident: toy(weights, ident) for weights, ident in reversed(batch)}
    return [done[ident] for _, ident in batch]


def parallel(rounds=10, seed=0, jobs=3, evaluate_batch=in_reverse, **kwargs):
    config = EvolveConfig(rounds=rounds, seed=seed, jobs=jobs)
    return EvolutionarySearch(SPACE, config, toy, evaluate_batch=evaluate_batch, **kwargs)


def test_one_job_is_the_sequential_history_with_or_without_an_evaluate_batch():
    default = search(rounds=12, seed=7)
    history = default.run()
    # Pinned from the sequential search as it was before batches existed.
    assert [ind.parent for ind in history[6:]] == [0, 0, 1, 1, 1, 8, 1, 12, 12, 11, 12, 8]
    assert "".join(ind.mutated[-1] for ind in history[6:]) == "111122212222"
    assert [ind.id for ind in default.population] == [10, 1, 11, 12, 16, 8]
    assert default.best.id == 12 and default.best.fitness == pytest.approx(-0.00241018116930224)
    explicit = parallel(rounds=12, seed=7, jobs=1, evaluate_batch=one_by_one)
    assert explicit.run() == history
    assert [ind.weights for ind in explicit.history] == [ind.weights for ind in history]


def test_three_jobs_run_deterministic_generations_that_improve():
    calls: list[list[int]] = []

    def recording(batch):
        calls.append([ident for _, ident in batch])
        return one_by_one(batch)

    s = parallel(rounds=10, seed=1, evaluate_batch=recording)
    history = s.run()
    assert calls == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [12, 13, 14], [15]]
    assert history == parallel(rounds=10, seed=1).run()  # twice, and in another finish order
    assert len(history) == 16 and s.rounds_done == 10 and s.finished
    assert [ind.round for ind in history[6:]] == list(range(1, 11))
    assert len(s.population) == 6
    assert s.best.fitness > max(ind.fitness for ind in history[:6])
    for child in history[6:]:  # children of a generation do not see each other
        generation_start = 6 + 3 * ((child.id - 6) // 3)
        assert child.parent < generation_start
    assert history != search(rounds=10, seed=1).run()  # not the sequential search


def test_the_finish_order_of_a_batch_does_not_change_the_history():
    assert parallel(evaluate_batch=in_reverse).run() == parallel(evaluate_batch=one_by_one).run()


def test_an_exception_in_a_batch_fails_only_that_individual():
    def eighth_fails(batch):
        return [ValueError("diverged") if i == 8 else toy(w, i) for w, i in batch]

    s = parallel(rounds=6, evaluate_batch=eighth_fails)
    history = s.run()
    assert [ind.id for ind in history if ind.failed] == [8]
    assert history[8].error == "ValueError: diverged" and history[8].fitness == -math.inf
    assert s.rounds_done == 6 and all(ind.id != 8 for ind in s.population)
    ok = parallel(rounds=6, evaluate_batch=one_by_one).run()
    assert history[:8] == ok[:8] and history[8].weights == ok[8].weights  # its batch: 6, 7, 8


def test_a_batch_interrupted_in_the_second_generation_resumes_to_the_same_history(tmp_path):
    whole = parallel(rounds=7, seed=4, jobs=2).run()
    state = tmp_path / "state.json"
    calls = []

    def interrupted(batch):  # 3 chunks of the initial population, then generations
        calls.append(batch)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return one_by_one(batch)

    cut = parallel(rounds=7, seed=4, jobs=2, evaluate_batch=interrupted)
    with pytest.raises(KeyboardInterrupt):
        cut.run(state_path=state)
    assert len(cut.history) == 8 and cut.rounds_done == 2
    resumed = EvolutionarySearch.resume(state, toy, evaluate_batch=in_reverse)
    assert resumed.history == whole[:8]
    assert resumed.run(state_path=state) == whole
    assert cut.run() == whole  # the same object redraws the interrupted generation too
    assert calls[5] == calls[4]


def test_resuming_with_other_jobs_is_refused_and_jobs_must_be_positive(tmp_path):
    state = tmp_path / "state.json"
    parallel(rounds=2, jobs=2).run(state_path=state)
    with pytest.raises(ValueError, match="jobs was 2 in the saved search"):
        EvolutionarySearch.resume(state, toy, EvolveConfig(rounds=2, jobs=3))
    for jobs in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="jobs"):
            EvolveConfig(jobs=jobs)


def test_a_wrong_number_of_results_or_a_returned_interrupt_stops_the_search():
    with pytest.raises(ValueError, match="returned 2 results for 3 individuals"):
        parallel(evaluate_batch=lambda batch: [0.0, 0.0]).run()
    s = parallel(rounds=4, evaluate_batch=lambda b: [KeyboardInterrupt()] * len(b))
    with pytest.raises(KeyboardInterrupt):
        s.run()
    assert s.history == []


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (dict(population=1), "population"),
        (dict(tournament=1), "tournament"),
        (dict(population=4, tournament=5), "tournament"),
        (dict(rounds=-1), "rounds"),
        (dict(rounds=2.5), "rounds"),
        (dict(max_seconds=0), "max_seconds"),
        (dict(max_seconds=math.inf), "max_seconds"),
        (dict(resample_prob=1.5), "resample_prob"),
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=math.nan), "sigma"),
        (dict(seed=True), "seed"),
    ],
)
def test_bad_configs_name_the_field(config, field):
    with pytest.raises(ValueError, match=field):
        EvolveConfig(**config)


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ({}, "empty"),
        ({"a": (1.0, 1.0)}, "low must be < high"),
        ({"a": (2.0, 1.0)}, "low must be < high"),
        ({"a": (0.0, math.inf)}, "finite"),
        ({"a": (math.nan, 1.0)}, "finite"),
        ({"a": (0.0,)}, "pair"),
        ({"a": "01"}, "pair"),
        ({"": (0.0, 1.0)}, "non-empty"),
    ],
)
def test_bad_weight_spaces_say_what_is_wrong(ranges, message):
    with pytest.raises(ValueError, match=message):
        WeightSpace(ranges)


def test_history_csv_has_a_row_per_individual_and_the_weight_columns(tmp_path: Path):
    import pandas as pd

    history = search(rounds=5, fitness=lambda w, i: 1 / 0 if i == 7 else toy(w, i)).run()
    path = write_history_csv(history, tmp_path / "out" / "history.csv")
    frame = pd.read_csv(path)
    assert list(frame.columns) == [
        *("id", "round", "parent", "mutated", "fitness", "error", "seconds", "w1", "w2")
    ]
    assert len(frame) == 11 and list(frame["id"]) == list(range(11))
    assert frame["parent"].isna().sum() == 6
    assert frame.loc[7, "fitness"] == -math.inf and "ZeroDivisionError" in frame.loc[7, "error"]
    assert frame["w1"].tolist() == pytest.approx([ind.weights["w1"] for ind in history])
    assert history_frame([]).empty


def test_best_per_round_is_the_running_best():
    history = search(rounds=10, seed=3).run()
    best = best_per_round(history)
    assert len(best) == 11
    assert best[0] == max(history[:6], key=lambda ind: ind.fitness)
    assert best[-1] == max(history, key=lambda ind: ind.fitness)
    assert all(a.fitness <= b.fitness for a, b in zip(best, best[1:], strict=False))


@pytest.fixture
def saved_figures(monkeypatch):
    """Every matplotlib Figure saved during the test, in order."""
    from matplotlib.figure import Figure

    saved = []
    savefig = Figure.savefig

    def recording_savefig(self, *args, **kwargs):
        saved.append(self)
        return savefig(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    return saved


# Ranges whose positions differ from the raw weights (w1 / 2 and (w2 + 1) / 2).
WIDE = WeightSpace({"w1": (0.0, 2.0), "w2": (-1.0, 1.0)})


@pytest.mark.parametrize("rounds", [0, 8])
def test_the_heatmap_is_a_png(tmp_path: Path, rounds: int, saved_figures):
    """A PNG of the best individual's weights per round (as positions in their ranges), the
    best fitness per round and every child's."""
    import numpy as np
    from matplotlib.image import imread

    history = search(rounds=rounds).run()
    path = plot_weight_heatmap(history, SPACE.names, tmp_path / "w.png", space=WIDE)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 150 and pixels.shape[1] > 400
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20  # not blank
    (figure,) = saved_figures
    top, bottom = figure.axes[:2]
    best = best_per_round(history)
    assert len(best) == rounds + 1
    (image,) = top.images
    expected = [[WIDE.position(n, ind.weights[n]) for ind in best] for n in SPACE.names]
    np.testing.assert_allclose(image.get_array(), expected, rtol=1e-12)
    assert image.get_clim() == (0.0, 1.0)
    assert [t.get_text() for t in top.get_yticklabels()] == list(SPACE.names)
    (line,) = bottom.lines
    np.testing.assert_allclose(line.get_ydata(), [ind.fitness for ind in best])
    children = [(ind.round, ind.fitness) for ind in history if ind.round > 0]
    (dots,) = bottom.collections
    np.testing.assert_allclose(dots.get_offsets().reshape(-1, 2), np.reshape(children, (-1, 2)))

    empty = plot_weight_heatmap([], SPACE.names, tmp_path / "empty.png")
    assert empty.read_bytes()[:4] == b"\x89PNG"
    top = saved_figures[1].axes[0]
    assert not top.images and [t.get_text() for t in top.texts] == ["no individuals"]


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed"
)
def test_tensorboard_writes_an_events_file(tmp_path: Path):
    log_dir = log_tensorboard(search(rounds=3).run(), tmp_path / "tb")
    assert list(log_dir.glob("events.out.tfevents.*"))


LOG_SPACE = WeightSpace({"ewc.lambda": (1e3, 1e7, "log")})


def test_a_log_range_is_sampled_uniformly_in_log_space():
    rng = random.Random(0)
    draws = [LOG_SPACE.sample(rng)["ewc.lambda"] for _ in range(4000)]
    # One draw: exp(U(log 1e3, log 1e7)), the same uniform a linear range would draw.
    first = random.Random(0).uniform(math.log(1e3), math.log(1e7))
    assert draws[0] == pytest.approx(math.exp(first), rel=1e-12)
    assert all(1e3 <= d <= 1e7 for d in draws)
    # Each of the 4 decades holds a quarter of the draws (linear: 90% in the last one).
    shares = [sum(10**e <= d < 10 ** (e + 1) for d in draws) / len(draws) for e in range(3, 7)]
    assert shares == pytest.approx([0.25] * 4, abs=0.03)


def test_a_log_range_mutates_in_log_space():
    config = EvolveConfig(resample_prob=0.0, sigma=0.1)
    rng = random.Random(1)
    child, name = config.mutate({"ewc.lambda": 1e5}, LOG_SPACE, rng)
    # The same draws by hand: the weight's index, the resample coin, then the log-space step.
    by_hand = random.Random(1)
    by_hand.randrange(1), by_hand.random()
    step = by_hand.gauss(0.0, 0.1 * (math.log(1e7) - math.log(1e3)))
    assert name == "ewc.lambda"
    assert child[name] == pytest.approx(math.exp(math.log(1e5) + step), rel=1e-12)
    # Steps are symmetric in log10: sd 0.1 * 4 decades, median at the parent.
    logs = [
        math.log10(config.mutate({"ewc.lambda": 1e5}, LOG_SPACE, rng)[0]["ewc.lambda"]) - 5
        for _ in range(4000)
    ]
    assert statistics.median(logs) == pytest.approx(0.0, abs=0.03)
    assert statistics.pstdev(logs) == pytest.approx(0.4, rel=0.05)
    # A resample is a fresh log-uniform draw: half the draws below the geometric middle.
    resampled = EvolveConfig(resample_prob=1.0)
    values = [
        resampled.mutate({"ewc.lambda": 1e3}, LOG_SPACE, rng)[0]["ewc.lambda"] for _ in range(4000)
    ]
    assert sum(v < 1e5 for v in values) / len(values) == pytest.approx(0.5, abs=0.03)


def test_a_log_range_survives_a_save_and_needs_a_positive_low(tmp_path: Path):
    space = WeightSpace({"w1": (0.0, 1.0), "ewc.lambda": (1e3, 1e7, "log")})
    config = EvolveConfig(rounds=3, population=3, tournament=2)
    fitness = lambda w, i: -abs(math.log10(w["ewc.lambda"]) - 4)  # noqa: E731
    first = EvolutionarySearch(space, config, fitness)
    first.run(state_path=tmp_path / "state.json")
    resumed = EvolutionarySearch.resume(tmp_path / "state.json", fitness)
    assert resumed.space == space and resumed.space.is_log("ewc.lambda")
    assert space.position("ewc.lambda", 1e5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="log range needs low > 0"):
        WeightSpace({"ewc.lambda": (0.0, 1e6, "log")})
    with pytest.raises(ValueError, match="'log'"):
        WeightSpace({"ewc.lambda": (1.0, 1e6, "exp")})
