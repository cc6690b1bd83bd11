"""Evolutionary search of loss weights (Piergiovanni, Angelova & Ryoo, CVPR 2020).

The search keeps a population of weight settings and improves it one child at a time
(steady state):

1. *Initial population*: ``population`` individuals, every weight drawn uniformly in its
   range. All of them are drawn before the first evaluation, so the random stream does not
   depend on how long (or whether) evaluations take.
2. *Round* ``r = 1, 2, ...``: a tournament samples ``tournament`` distinct members of the
   population and the fittest wins (ties: lowest id); the child is the winner with ONE
   weight mutated (:meth:`EvolveConfig.mutate`); it is evaluated; then it replaces the
   population's worst member if and only if it is strictly fitter (ties among the worst:
   the oldest goes). A child no better than the worst is discarded, which makes the
   search elitist: the best fitness of the population never decreases, and the population
   best is the best individual ever evaluated.
3. The search stops when ``rounds`` rounds are done or ``max_seconds`` of wall time are
   spent (checked before every evaluation, summed over resumed sessions).

Parallel evaluation (``jobs = J > 1``, with an ``evaluate_batch`` that runs a process pool)
makes it a *generational* variant of the steady-state search:

- the initial population is evaluated in chunks of up to J individuals (ids in order);
- a *generation* is up to J children (fewer when fewer rounds remain): their tournaments
  and mutations are drawn, in order, from the population as it stands before the generation
  (every random draw of the generation precedes its evaluation), the J children are
  evaluated as one batch, then the replacement rule above is applied child by child in id
  order (each child meets the worst of the population as the previous child left it);
- children of one generation do not see each other (a child's parent is never a sibling),
  so J > 1 is a different search than J = 1, which is exactly the sequential search above.
  Every child still counts as one round (``Individual.round``).

The paper runs asynchronous workers (a child is bred whenever a worker is free), which is
not reproducible: the history would depend on which evaluation finishes first. Here results
are matched to individuals by position, so the same seed, J and a deterministic fitness give
the same history however a parallel evaluator schedules its work. The budget is checked and
the state saved between chunks or generations; a generation is never split, so ``run``'s
``rounds`` argument is rounded up to whole generations and splitting a search into several
``run`` calls does not change its history. (Extending ``rounds`` on resume changes it only
when the old budget ended in a shortened generation, i.e. was not reached in whole ones.)

Fitness is higher-is-better. A fitness function that raises (or returns NaN or an
infinity), or an ``evaluate_batch`` result that is an ``Exception`` instance, marks that
individual failed: fitness ``-inf`` plus the error, and the search goes on; a failed child
never enters the population. Only when every initial individual
fails does the search stop with an error (there is nothing to evolve from).

Everything random comes from one ``random.Random(seed)`` owned by the search, and its
state is part of :meth:`EvolutionarySearch.state_dict`: the same seed and a deterministic
fitness give the same history, and a search interrupted (even inside an evaluation) then
resumed gives the history of an uninterrupted one.

Example:
    >>> space = WeightSpace({"lwf-ssl.lambda": (0.0, 1.0), "pfr.alpha": (0.0, 10.0)})
    >>> search = EvolutionarySearch(space, EvolveConfig(rounds=30, seed=0),
    ...                             fitness=lambda w, i: -(w["lwf-ssl.lambda"] - 0.7) ** 2)
    >>> search.run(state_path="runs/evolve/state.json")  # saved after every individual
    >>> search.best.weights
    {'lwf-ssl.lambda': 0.69..., 'pfr.alpha': ...}
    >>> EvolutionarySearch.resume("runs/evolve/state.json", fitness).run()  # after a crash
    >>> # In parallel: evaluate_batch([(weights, id), ...]) -> [fitness or exception, ...]
    >>> EvolutionarySearch(space, EvolveConfig(rounds=30, jobs=4), fitness, evaluate_batch=pool)
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cl_ssl.atomic import write_text
from cl_ssl.flags import setting

Fitness = Callable[[dict[str, float], int], float]
# [(weights, individual_id), ...] -> per position, the fitness or the exception evaluation raised.
BatchEvaluator = Callable[[list[tuple[dict[str, float], int]]], list[float | BaseException]]
STATE_VERSION = 1
# Fields of EvolveConfig that only set the budget: a resumed search may change them.
BUDGET_FIELDS = ("rounds", "max_seconds")


Bounds = tuple[float, float] | tuple[float, float, str]
LOG = "log"  # third element of a range: searched log-uniformly


@dataclass(frozen=True)
class WeightSpace:
    """The searched weights: name -> ``(low, high)`` or ``(low, high, "log")``.

    Both bounds finite with ``low < high``. A ``"log"`` range (``0 < low``) is searched in
    log space: draws are ``exp(U(log low, log high))`` (each decade equally likely) and a
    mutation perturbs ``log w`` (:meth:`EvolveConfig.mutate`), for weights spanning decades
    such as EWC's lambda. Names are free-form (e.g. the option names ``lwf-ssl.lambda``);
    their order is kept and is the order of the random draws, so it is part of what a seed
    reproduces.

    Example:
        >>> WeightSpace({"lwf-ssl.lambda": (0.0, 1.0)}).names
        ('lwf-ssl.lambda',)
        >>> WeightSpace({"ewc.lambda": (1e3, 1e7, "log")}).is_log("ewc.lambda")
        True
    """

    ranges: Mapping[str, Bounds]

    def __post_init__(self) -> None:
        if not isinstance(self.ranges, Mapping) or not self.ranges:
            raise ValueError("the weight space is empty: give at least one name -> (low, high)")
        ranges: dict[str, Bounds] = {}
        for name, bounds in self.ranges.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"weight name {name!r} must be a non-empty string")
            if isinstance(bounds, str | bytes):
                bounds = None  # two characters would unpack into a pair below
            try:
                *pair, scale = (*bounds, "linear") if len(bounds) == 2 else bounds
                low, high = (float(b) for b in pair)
            except (TypeError, ValueError):
                raise ValueError(
                    f"weight {name!r}: range must be a pair of numbers (low, high), optionally "
                    f"with 'log' third, got {bounds!r}"
                ) from None
            if scale not in ("linear", LOG):
                raise ValueError(
                    f"weight {name!r}: the third element of a range must be 'log', got {scale!r}"
                )
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ValueError(f"weight {name!r}: bounds must be finite, got ({low}, {high})")
            if low >= high:
                raise ValueError(
                    f"weight {name!r}: low must be < high, got ({low}, {high}): swap or widen them"
                )
            if scale == LOG and low <= 0:
                raise ValueError(
                    f"weight {name!r}: a log range needs low > 0, got ({low}, {high}): pass a "
                    "positive low (e.g. a decade below the smallest useful value)"
                )
            ranges[name] = (low, high, LOG) if scale == LOG else (low, high)
        object.__setattr__(self, "ranges", ranges)  # a private copy: frozen in practice

    def __hash__(self) -> int:
        return hash(tuple(self.ranges.items()))

    @property
    def names(self) -> tuple[str, ...]:
        """The weight names, in order."""
        return tuple(self.ranges)

    def is_log(self, name: str) -> bool:
        """Whether ``name`` is searched in log space."""
        return len(self.ranges[name]) == 3

    def bounds(self, name: str) -> tuple[float, float]:
        """``(low, high)`` of ``name``."""
        low, high = self.ranges[name][:2]
        return float(low), float(high)

    def to_search(self, name: str, value: float) -> float:
        """``value`` on the axis the search draws on: ``log(value)`` for a log range."""
        return math.log(value) if self.is_log(name) else value

    def from_search(self, name: str, value: float) -> float:
        """Inverse of :meth:`to_search`, kept inside the range (``exp`` may round past it)."""
        low, high = self.bounds(name)
        return min(high, max(low, math.exp(value) if self.is_log(name) else value))

    def position(self, name: str, value: float) -> float:
        """Where ``value`` lies on its search axis: 0 at ``low``, 1 at ``high``."""
        low, high = (self.to_search(name, b) for b in self.bounds(name))
        return (self.to_search(name, value) - low) / (high - low)

    def sample(self, rng: random.Random) -> dict[str, float]:
        """One setting, each weight uniform on its search axis (one draw per weight, in order)."""
        drawn = {}
        for name in self.ranges:
            low, high = (self.to_search(name, b) for b in self.bounds(name))
            drawn[name] = self.from_search(name, rng.uniform(low, high))
        return drawn

    def to_dict(self) -> dict[str, list[float | str]]:
        """JSON form: name -> ``[low, high]`` or ``[low, high, "log"]``."""
        return {name: list(bounds) for name, bounds in self.ranges.items()}


@dataclass(frozen=True)
class EvolveConfig:
    """How the search runs: population, selection, mutation, budget and seed.

    Mutation of the chosen weight ``w`` in ``[low, high]``: with probability
    ``resample_prob`` a fresh uniform draw in the range (a long jump, to leave a local
    optimum), else ``clip(w + N(0, (sigma * (high - low))^2), low, high)`` (a local step
    scaled to the range, so weights of different scales mutate alike). A ``"log"`` range
    does both on ``log w`` (``log low`` to ``log high``), then maps back with ``exp``.

    Each field's ``setting(help=...)`` is its ``clssl evolve`` flag. ``jobs`` is not a
    budget: it changes the history (chunks of the initial population, children per
    generation; see the module docstring), so a resume must keep it.

    Example:
        >>> EvolveConfig(population=8, tournament=3, rounds=50, max_seconds=3600, seed=1)
    """

    population: int = setting(6, help="Population size (individuals kept, at least 2).")
    tournament: int = setting(
        3,
        help="Individuals sampled per tournament, in [2, population]; larger is greedier "
        "(= population always picks the best as parent).",
    )
    rounds: int = setting(
        8, help="Children evaluated after the initial population (0: only the initial one)."
    )
    max_seconds: float | None = setting(
        None,
        help="Wall-time budget in minutes (checked before each individual).",
        flags="--max-minutes",
        parse=lambda minutes: 60 * minutes,
        cli_type=float | None,
    )
    resample_prob: float = setting(
        0.2, help="Probability that a mutation resamples the weight instead of perturbing it."
    )
    sigma: float = setting(
        0.2, help="Standard deviation of a perturbation, as a fraction of the weight's range."
    )
    seed: int = setting(0, help="Seed of the search.", flags="--evolve-seed")
    jobs: int = setting(
        1,
        help="Individuals evaluated at once, each a task of --launcher local (one process "
        "each, cores/jobs threads; the launcher when --jobs > 1 names none) or ray; 1 is the "
        "sequential steady-state search.",
    )

    def __post_init__(self) -> None:
        for name in ("population", "tournament", "rounds", "seed", "jobs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.population < 2:
            raise ValueError(f"--population must be at least 2, got {self.population}")
        if not 2 <= self.tournament <= self.population:
            fix = (
                "pass --tournament 2 or more"
                if self.tournament < 2
                else f"pass a --tournament of at most {self.population} or a --population of "
                f"at least {self.tournament}"
            )
            raise ValueError(
                f"--tournament {self.tournament} must be in [2, --population {self.population}] "
                f"(parents are drawn from the population): {fix}"
            )
        if self.rounds < 0:
            raise ValueError(f"rounds must be >= 0, got {self.rounds}")
        if self.max_seconds is not None and not (
            _is_number(self.max_seconds) and 0 < self.max_seconds < math.inf
        ):
            raise ValueError(
                f"max_seconds must be positive seconds or None, got {self.max_seconds!r}"
            )
        if not (_is_number(self.resample_prob) and 0.0 <= self.resample_prob <= 1.0):
            raise ValueError(f"resample_prob must be in [0, 1], got {self.resample_prob!r}")
        if not (_is_number(self.sigma) and 0.0 < self.sigma < math.inf):
            raise ValueError(f"sigma must be a positive fraction of the range, got {self.sigma!r}")
        if self.jobs < 1:
            raise ValueError(f"jobs must be >= 1 (individuals evaluated at once), got {self.jobs}")

    def mutate(
        self, weights: Mapping[str, float], space: WeightSpace, rng: random.Random
    ) -> tuple[dict[str, float], str]:
        """A copy of ``weights`` with one weight (uniformly chosen) mutated; and its name."""
        names = space.names
        name = names[rng.randrange(len(names))]
        low, high = (space.to_search(name, b) for b in space.bounds(name))
        if rng.random() < self.resample_prob:
            value = rng.uniform(low, high)
        else:
            step = rng.gauss(0.0, self.sigma * (high - low))
            value = min(high, max(low, space.to_search(name, weights[name]) + step))
        return {**weights, name: space.from_search(name, value)}, name


@dataclass(frozen=True)
class Individual:
    """One evaluated weight setting.

    Equality ignores ``seconds`` (wall time is never reproducible), so two histories of the
    same seed compare equal.

    Attributes:
        id: Sequential, from 0, in evaluation order (the initial population comes first).
        weights: Name -> value.
        fitness: Higher is better; ``-inf`` when the evaluation failed.
        error: Why the evaluation failed (``"ValueError: ..."``), else None.
        parent: Id of the tournament winner it was mutated from; None in the initial
            population.
        round: 0 for the initial population, else the round that produced it (from 1; with
            ``jobs`` > 1 each child of a generation has its own round).
        mutated: Name of the mutated weight; None in the initial population.
        seconds: Wall seconds of the evaluation (of the whole batch it was evaluated in).
    """

    id: int
    weights: dict[str, float]
    fitness: float
    error: str | None = None
    parent: int | None = None
    round: int = 0
    mutated: str | None = None
    seconds: float = field(default=0.0, compare=False)

    @property
    def failed(self) -> bool:
        """Whether the evaluation failed (fitness ``-inf``)."""
        return self.fitness == -math.inf

    def to_dict(self) -> dict[str, Any]:
        """JSON form; a failed fitness is stored as null (strict JSON has no infinity)."""
        record = dataclasses.asdict(self)
        record["fitness"] = None if self.failed else self.fitness
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Individual:
        """Inverse of :meth:`to_dict`."""
        fitness = record["fitness"]
        return cls(
            **{**record, "fitness": -math.inf if fitness is None else float(fitness)},
        )


class EvolutionarySearch:
    """Steady-state evolutionary search of a :class:`WeightSpace` (see the module docstring).

    Args:
        space: The weights and their ranges.
        config: Population, tournament, mutation, budget, seed and ``jobs``.
        fitness: ``fitness(weights, individual_id) -> float``, higher is better (e.g. train
            with these loss weights, return the kNN accuracy). An exception marks the
            individual failed; ``KeyboardInterrupt`` and ``SystemExit`` stop the search.
            Used (one individual after the other) when ``evaluate_batch`` is None; may be
            None otherwise.
        on_individual: Called with every evaluated individual, after the population was
            updated and the state saved (progress, logging); with ``jobs`` > 1, for each
            individual of a batch in id order once the whole batch is applied.
        clock: Seconds of a monotonic clock (tests give a fake one).
        evaluate_batch: ``evaluate_batch([(weights, id), ...])`` returns, position by
            position, the fitness or the exception instance its evaluation raised (e.g. a
            process pool; batches have at most ``config.jobs`` individuals). An ``Exception``
            instance marks that individual failed; a returned ``KeyboardInterrupt`` or
            ``SystemExit`` is raised, as is one ``evaluate_batch`` raises itself (the search
            stops and the state saved so far stays valid). None: ``fitness`` is called on
            each individual in turn.

    Attributes:
        history: Every evaluated individual, in evaluation order (``history[i].id == i``).
        population: The current population (fixed size once initialised).
        rounds_done: Rounds finished (children evaluated).
    """

    def __init__(
        self,
        space: WeightSpace,
        config: EvolveConfig,
        fitness: Fitness | None,
        *,
        on_individual: Callable[[Individual], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        evaluate_batch: BatchEvaluator | None = None,
    ) -> None:
        if fitness is None and evaluate_batch is None:
            raise ValueError("give a fitness function or an evaluate_batch: nothing evaluates")
        self.space, self.config, self.fitness = space, config, fitness
        self.evaluate_batch: BatchEvaluator = evaluate_batch or self._evaluate_one_by_one
        self.on_individual = on_individual
        self.clock = clock
        self.rng = random.Random(config.seed)
        self.history: list[Individual] = []
        self.population: list[Individual] = []
        self.rounds_done = 0
        self.seconds = 0.0  # wall time spent in run(), over all sessions
        self._started, self._spent_before = 0.0, 0.0  # of the current run() call
        # Drawn up front: the random stream never waits on an evaluation.
        self.pending: list[dict[str, float]] = [
            space.sample(self.rng) for _ in range(config.population)
        ]

    # ----------------------------------------------------------------------------- running
    @property
    def finished(self) -> bool:
        """Whether the round budget is spent (the wall budget is checked by :meth:`run`)."""
        return not self.pending and self.rounds_done >= self.config.rounds

    @property
    def best(self) -> Individual:
        """The fittest individual of the population (ties: lowest id)."""
        if not self.population:
            raise RuntimeError("no individual has been evaluated yet: call run() first")
        return max(self.population, key=lambda ind: (ind.fitness, -ind.id))

    def run(
        self, rounds: int | None = None, state_path: str | Path | None = None
    ) -> list[Individual]:
        """Evaluate what is left of the initial population, then rounds until the budget.

        Args:
            rounds: At least this many further rounds in this call, in whole generations
                (exactly this many with ``jobs`` = 1; the config's ``rounds`` still caps the
                total); None: until the budget is spent.
            state_path: Save :meth:`state_dict` there after every evaluated chunk of the
                initial population and every generation (every individual with ``jobs`` =
                1), so :meth:`resume` can continue after a crash.

        Returns:
            The history (every individual evaluated so far).

        Raises:
            RuntimeError: Every initial individual failed.
        """
        if rounds is not None and rounds < 0:
            raise ValueError(f"rounds must be >= 0 or None, got {rounds}")
        stop_at = self.config.rounds if rounds is None else self.rounds_done + rounds
        stop_at = min(stop_at, self.config.rounds)
        jobs = self.config.jobs
        self._started, self._spent_before = self.clock(), self.seconds
        while self.pending and not self._out_of_time():
            chunk = self._evaluate([(weights, None, None) for weights in self.pending[:jobs]])
            del self.pending[: len(chunk)]
            self.history.extend(chunk)
            self.population.extend(chunk)
            self._after(chunk, state_path)
        if not self.pending:
            self._check_initial()
        while not self.pending and self.rounds_done < stop_at and not self._out_of_time():
            # Sized by the config's budget only, so generations do not depend on run() calls.
            self._generation(min(jobs, self.config.rounds - self.rounds_done), state_path)
        return list(self.history)

    def _out_of_time(self) -> bool:
        self.seconds = self._spent_before + (self.clock() - self._started)
        limit = self.config.max_seconds
        return limit is not None and self.seconds >= limit

    def _generation(self, size: int, state_path: str | Path | None) -> None:
        before = self.rng.getstate()
        try:
            drawn = []
            for _ in range(size):  # every draw of the generation before any evaluation
                parent = self._tournament()
                weights, mutated = self.config.mutate(parent.weights, self.space, self.rng)
                drawn.append((weights, parent.id, mutated))
            children = self._evaluate(drawn)
        except BaseException:
            # Interrupted inside the evaluation (Ctrl-C): rewind, so that run() again on this
            # object draws the same generation, as a resume from the last save would.
            self.rng.setstate(before)
            raise
        for child in children:  # in id order, each against the population the last one left
            self.history.append(child)
            worst = min(self.population, key=lambda ind: (ind.fitness, ind.id))
            if child.fitness > worst.fitness:  # strictly: a tie keeps the incumbent
                self.population[self.population.index(worst)] = child
            self.rounds_done += 1
        self._after(children, state_path)

    def _tournament(self) -> Individual:
        entrants = self.rng.sample(self.population, self.config.tournament)
        return max(entrants, key=lambda ind: (ind.fitness, -ind.id))

    def _evaluate(
        self, drawn: list[tuple[dict[str, float], int | None, str | None]]
    ) -> list[Individual]:
        """Evaluate ``(weights, parent, mutated)`` as one batch; the state is left untouched."""
        first = len(self.history)
        batch = [(dict(weights), first + k) for k, (weights, _, _) in enumerate(drawn)]
        started = self.clock()
        results = list(self.evaluate_batch(batch))
        seconds = self.clock() - started
        if len(results) != len(batch):
            raise ValueError(
                f"evaluate_batch returned {len(results)} results for {len(batch)} individuals: "
                "it must return one fitness or exception per individual, in order"
            )
        individuals = []
        for k, ((weights, parent, mutated), result) in enumerate(zip(drawn, results, strict=True)):
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result  # a worker's KeyboardInterrupt or SystemExit stops the search
            fitness, error = _score(result)
            individuals.append(
                Individual(
                    id=first + k,
                    weights=dict(weights),
                    fitness=fitness,
                    error=error,
                    parent=parent,
                    round=0 if parent is None else self.rounds_done + 1 + k,
                    mutated=mutated,
                    seconds=seconds,
                )
            )
        return individuals

    def _evaluate_one_by_one(
        self, batch: list[tuple[dict[str, float], int]]
    ) -> list[float | BaseException]:
        """The default ``evaluate_batch``: ``fitness`` on each individual in turn."""
        assert self.fitness is not None  # checked by __init__
        results: list[float | BaseException] = []
        for weights, ident in batch:
            try:
                results.append(self.fitness(weights, ident))
            except Exception as exc:  # noqa: BLE001 - one broken run must not end the search
                results.append(exc)
        return results

    def _after(self, individuals: list[Individual], state_path: str | Path | None) -> None:
        self._out_of_time()  # brings self.seconds up to date for the save
        if state_path is not None:
            self.save(state_path)
        if self.on_individual is not None:
            for individual in individuals:
                self.on_individual(individual)

    def _check_initial(self) -> None:
        if self.population and all(ind.failed for ind in self.population):
            raise RuntimeError(
                f"all {len(self.population)} initial individuals failed (first: "
                f"{self.population[0].error}): fix the fitness function, nothing can evolve"
            )

    # -------------------------------------------------------------------------- resuming
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: space, config, history, population, RNG state.

        Strict JSON (no NaN or infinity): ``json.dumps(state, allow_nan=False)`` works.
        """
        version, internal, gauss_next = self.rng.getstate()
        return {
            "version": STATE_VERSION,
            "space": self.space.to_dict(),
            "config": dataclasses.asdict(self.config),
            "history": [ind.to_dict() for ind in self.history],
            "population": [ind.id for ind in self.population],
            "pending": [dict(w) for w in self.pending],
            "rounds_done": self.rounds_done,
            "seconds": self.seconds,
            "rng": [version, list(internal), gauss_next],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s output.

        The space and every config field but the budget (``rounds``, ``max_seconds``) must
        be the saved ones: the history would not be the one the seed reproduces otherwise.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"state version {state.get('version')!r} is not {STATE_VERSION}: "
                "it was written by another cl-ssl version"
            )
        if WeightSpace(state["space"]) != self.space:
            raise ValueError(
                f"the saved weight space {state['space']} differs from {self.space.to_dict()}: "
                "resume with the same weights and ranges"
            )
        saved = EvolveConfig(**state["config"])
        for name in (f.name for f in dataclasses.fields(EvolveConfig)):
            if name not in BUDGET_FIELDS and getattr(saved, name) != getattr(self.config, name):
                raise ValueError(
                    f"{name} was {getattr(saved, name)!r} in the saved search, not "
                    f"{getattr(self.config, name)!r}: only {', '.join(BUDGET_FIELDS)} may change"
                )
        self.history = [Individual.from_dict(record) for record in state["history"]]
        self.population = [self.history[ident] for ident in state["population"]]
        self.pending = [dict(w) for w in state["pending"]]
        self.rounds_done = int(state["rounds_done"])
        self.seconds = float(state["seconds"])
        version, internal, gauss_next = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss_next))

    def save(self, path: str | Path) -> Path:
        """Write :meth:`state_dict` as JSON, atomically and durably (what ``--resume`` reads)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(self.state_dict(), allow_nan=False), durable=True)
        return path

    @classmethod
    def resume(
        cls,
        path: str | Path,
        fitness: Fitness | None,
        config: EvolveConfig | None = None,
        *,
        evaluate_batch: BatchEvaluator | None = None,
        **kwargs: Any,
    ) -> EvolutionarySearch:
        """The search saved at ``path``, ready to :meth:`run` on.

        Args:
            path: A file written by :meth:`save` (or by :meth:`run` with ``state_path``).
            fitness: The fitness function (functions are not saved).
            config: Replaces the saved config to change the budget (``rounds``,
                ``max_seconds``); every other field (``jobs`` included) must equal the saved
                one.
            evaluate_batch: As for the constructor.
            **kwargs: ``on_individual``, ``clock``, as for the constructor.
        """
        state = json.loads(Path(path).read_text())
        space = WeightSpace({name: tuple(b) for name, b in state["space"].items()})
        config = config or EvolveConfig(**state["config"])
        search = cls(space, config, fitness, evaluate_batch=evaluate_batch, **kwargs)
        search.load_state_dict(state)
        return search


def _score(result: object) -> tuple[float, str | None]:
    """``(fitness, error)`` of one evaluation's result: a number, or the exception it raised."""
    if isinstance(result, BaseException):
        return -math.inf, f"{type(result).__name__}: {result}"
    try:
        fitness = float(result)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - a bad return value fails that individual only
        return -math.inf, f"{type(exc).__name__}: {exc}"
    if not math.isfinite(fitness):
        return -math.inf, f"fitness returned {fitness}: it must be a finite number"
    return fitness, None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
