"""Checkpoints inside an experience (``--checkpoint-every``): a lost machine loses minutes.

Every N epochs (``--checkpoint-every 2``) or N training steps (``--checkpoint-every
200steps``) of an experience, the run writes ``checkpoints/within.pt``: the full training
state of :func:`cl_ssl.state.capture` (model, optimizer, method, strategy plugins, clock,
random states, metrics rows) and where it stands (:class:`Position`). Only the newest is
kept (each replaces the last atomically and durably, like the experience checkpoints), and
it is deleted once ``exp<k>.pt`` is written.

A run resumed from it trains on exactly as the uninterrupted one:

- the experience begins as it began then (from ``exp<k-1>.pt``, or the seed's initial
  weights for k = 0), so whatever plugins derive from the model at its start (a teacher)
  is the same; then, once ``before_training_exp`` has run, the saved model, optimizer,
  method, clock, counters, metric states, plugin generators and random states replace the
  experience's start (:meth:`InterimCheckpoints.resume`);
- the epoch loop starts at the saved epoch (the clock's);
- inside an epoch (the steps form), the data order is the epoch's: the random state saved
  when the epoch began is put back before its loader draws the order, the ``step`` batches
  already trained are fetched and dropped (:class:`SkipBatches`, no compute), and the
  random state of the step is put back before the next batch is augmented.

Under torchrun each rank's random states and floating buffers (BatchNorm's running
statistics, which differ per rank until the experience ends) are gathered into the
checkpoint, and each rank takes back its own.

Example:
    >>> parse_every("200steps"), parse_every("2")
    (Every(count=200, unit='steps'), Every(count=2, unit='epochs'))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

WITHIN_FILE = "within.pt"
"""The in-experience checkpoint's name in a run's ``checkpoints/`` folder."""

_EVERY = re.compile(r"^\s*(?P<count>\d+)\s*(?P<unit>epochs?|steps?)?\s*$")


@dataclass(frozen=True)
class Every:
    """Checkpoint every ``count`` epochs or steps of an experience."""

    count: int
    unit: Literal["epochs", "steps"]


def parse_every(text: str | None) -> Every | None:
    """``"N"`` or ``"Nepochs"`` -> every N epochs; ``"Nsteps"`` -> every N steps; None -> off.

    Raises:
        ValueError: Anything else, or N < 1.
    """
    if text is None:
        return None
    match = _EVERY.match(str(text))
    if match is None or int(match["count"]) < 1:
        raise ValueError(
            f"--checkpoint-every {text!r}: give N epochs (2 or 2epochs) or N steps (200steps), "
            "N at least 1"
        )
    unit = "steps" if (match["unit"] or "epochs").startswith("step") else "epochs"
    return Every(int(match["count"]), unit)


def check_every(value: str | None) -> str | None:
    """The settings check of ``--checkpoint-every`` (:mod:`cl_ssl.flags`)."""
    try:
        parse_every(value)
    except ValueError:
        return f"must be N (epochs), Nepochs or Nsteps with N >= 1, got {value!r}"
    return None


@dataclass(frozen=True)
class Position:
    """Where an in-experience checkpoint stands: ``step`` steps into ``epoch`` of ``experience``.

    ``step`` 0 is an epoch boundary (``epoch`` epochs done). ``epoch_random`` is the random
    state the epoch began with (its data order), for ``step`` > 0; ``step_random`` the one
    of the step (read back from the checkpoint, not saved twice).
    """

    experience: int
    epoch: int
    step: int
    epoch_random: Any = None
    step_random: Any = None


class SkipBatches:
    """The loader's next pass without its first ``skip`` batches; then ``then()`` runs.

    The batches are fetched and dropped, so the loader draws (its order, its workers'
    seeds) exactly as in the interrupted pass. Later passes are the loader's own. Every
    other attribute is the loader's (``repeat`` of online mode, ...).
    """

    def __init__(self, loader: Any, skip: int, then: Callable[[], None]) -> None:
        self.loader, self.skip, self.then = loader, skip, then

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def __iter__(self) -> Iterator[Any]:
        batches = iter(self.loader)
        skip, self.skip = self.skip, 0
        for _ in range(skip):
            next(batches)
        if skip:
            self.then()
        yield from batches


class InterimCheckpoints:
    """The template's in-experience checkpoints: when to save, and going on from one.

    Args:
        every: How often (:func:`parse_every`).
        save: Writes the checkpoint at a :class:`Position` (every rank calls it at the same
            step: under torchrun it gathers the ranks' states).
        restore: Puts a saved training state back into the template (after
            ``before_training_exp``); returns the :class:`Position` it was saved at.
    """

    def __init__(
        self,
        every: Every,
        save: Callable[[Position], None],
        restore: Callable[[Any, dict], Position],
    ) -> None:
        self.every, self.save, self.restore = every, save, restore
        self.pending: dict | None = None  # a training state to go on from, set before train()
        self._epoch_random: Any = None
        self._resumed: Position | None = None

    def resume(self, strategy: Any) -> bool:
        """Put :attr:`pending` back (from ``before_training_exp``); False when none."""
        state, self.pending = self.pending, None
        if state is None:
            return False
        position = self.restore(strategy, state)
        self._resumed = position if position.step > 0 else None
        return True

    def begin_epoch(self, strategy: Any) -> None:
        """After ``before_training_epoch``: the epoch's random state (mid-epoch resume: skip)."""
        from cl_ssl.state import random_state, set_random_state

        position, self._resumed = self._resumed, None
        if position is not None:
            # The clock's before_training_epoch zeroed the steps of the epoch.
            strategy.clock.train_epoch_iterations = position.step
            set_random_state(position.epoch_random)  # the epoch's order, drawn again
            strategy.dataloader = SkipBatches(
                strategy.dataloader, position.step, lambda: set_random_state(position.step_random)
            )
        if self.every.unit == "steps":
            self._epoch_random = random_state()

    def after_step(self, strategy: Any) -> None:
        """Every N steps of the experience (not its last: ``exp<k>.pt`` follows)."""
        clock = strategy.clock
        done = clock.train_exp_iterations
        last = done >= strategy.steps_per_epoch * strategy.train_epochs
        if self.every.unit != "steps" or done % self.every.count or last:
            return
        strategy.check_finite()  # never save past a non-finite loss
        k = strategy.experience.current_experience
        step = clock.train_epoch_iterations
        self.save(Position(k, clock.train_exp_epochs, step, self._epoch_random))

    def after_epoch(self, strategy: Any) -> None:
        """Every N epochs of the experience (not its last: ``exp<k>.pt`` follows)."""
        epochs = strategy.clock.train_exp_epochs
        if self.every.unit != "epochs" or epochs % self.every.count:
            return
        if epochs >= strategy.train_epochs:
            return
        self.save(Position(strategy.experience.current_experience, epochs, 0))
