"""Online mode (``--online``): each experience is one pass over its frames in arrival order.

Video frames are not i.i.d.: consecutive frames of a VOD are near-duplicates, and a
shuffled multi-epoch pass hides that. In online mode the training loader keeps the
dataset's order (the stream's arrival order: timestamp, then VOD), every incoming batch is
trained on ``--updates-per-batch`` times in a row (fresh views each time; with ``replay``,
fresh buffered rows each time) and then never again; a last batch of exactly one frame is
never formed (the frame is not trained on; :func:`cl_ssl.template.lone_last_batch`). The
per-experience multi-epoch mode stays the default.

The template marks a step ``fresh`` when its new images are trained on for the first time
(first epoch, first update of the batch): streaming buffers insert incoming frames only
then, so a frame enters a buffer once.

Example:
    >>> loader = RepeatedBatches(DataLoader(frames, batch_size=64), times=4)
    >>> len(loader) == 4 * len(DataLoader(frames, batch_size=64))
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


class RepeatedBatches:
    """Each batch of ``loader`` ``times`` times in a row; :attr:`repeat` is the current one.

    Every repeat yields a new list, so a plugin that replaces rows of a batch (replay)
    never changes the next repeat's rows.
    """

    def __init__(self, loader: Iterable, times: int) -> None:
        if times < 1:
            raise ValueError(f"--updates-per-batch must be at least 1, got {times}")
        self.loader, self.times = loader, times
        self.repeat = 0

    def __len__(self) -> int:
        return len(self.loader) * self.times  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            for repeat in range(self.times):
                self.repeat = repeat
                yield list(batch)
        self.repeat = 0
