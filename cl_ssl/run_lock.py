"""One writer per run directory: ``<run>/.bench.lock``, held while a bench or continue writes it.

Two ``clssl bench`` processes in one run directory (a ``--resume`` started while the bench
it would finish is still running, an ``--overwrite`` of a live run), or two ``clssl
continue`` of one deployed embedding, would train the same runs twice over each other: each
rewrites the other's checkpoints and ``metrics.csv``, TensorBoard shows every curve twice
and the cost columns time two runs sharing the cores. A continue holds the lock of the
bench run it writes into (:func:`cl_ssl.periodic.writer_directory`), else of its own folder.
The lock is an exclusive ``flock`` on ``.bench.lock``: the kernel releases it when its
process ends, however it ends, so a bench killed with SIGKILL leaves nothing to clean up and
``--resume`` after it goes on as before. The file stays (it holds the last holder's pid,
for the refusal's message); an unlocked file means nobody is writing.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".bench.lock"


class RunInUse(ValueError):
    """Another live process holds the run directory's lock."""


@contextmanager
def holding(directory: Path) -> Iterator[None]:
    """Hold ``directory``'s bench lock inside the block; :class:`RunInUse` if it is held."""
    descriptor = os.open(Path(directory) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
            raise RunInUse(
                f"{directory} is being written by another clssl bench or continue (process "
                f"{holder or 'unknown'}): wait for it to end, or stop it, then run again"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(descriptor)  # closing the last descriptor releases the lock


def check_not_in_use(directory: Path) -> None:
    """Raise :class:`RunInUse` if a live process holds ``directory``'s lock (else nothing)."""
    if (Path(directory) / LOCK_FILE).exists():
        with holding(directory):
            pass
