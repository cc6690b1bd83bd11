"""Writing an output file so that no reader ever sees half of it, and a full disk is named.

:func:`atomic_write` writes ``<name>.partial`` next to the target and renames it over the
target only once the write completed, so a kill, an exception or a full disk leaves the
previous file intact and no ``.partial`` behind. A rename alone survives a killed process;
``durable=True`` also survives a lost machine (power cut, kernel panic): it fsyncs the file
before the rename and the folder after it, so the rename is on disk when the call returns.
Checkpoints and the configurations ``--resume`` reads are durable; summaries, tables and
plots are not (each costs an fsync of the whole disk's journal, and a rerun rewrites them).

A write that runs out of space (``ENOSPC``) raises :class:`DiskFull`, which names the file,
what it needed and what is free on its disk.

Example:
    >>> with atomic_write(run / "summary.csv") as file:
    ...     table.to_csv(file, index=False)
    >>> write_bytes(run / "checkpoints" / "exp0.pt", payload, durable=True)
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

PARTIAL = ".partial"


class DiskFull(OSError):
    """A write ran out of space (``errno.ENOSPC``): the file, its size and the space free.

    Args:
        path: The file being written.
        needed: Its full size in bytes; None when unknown.
        free: Bytes free on its disk when the write failed (:func:`free_bytes`).
    """

    def __init__(self, path: Path, needed: int | None, free: int | None) -> None:
        size = f"needs {format_size(needed)}" if needed is not None else "needs more space"
        where = "unknown" if free is None else format_size(free)
        message = f"no space left for {path}: it {size}, {where} is free on its disk"
        super().__init__(errno.ENOSPC, message)
        self.path, self.needed, self.free = path, needed, free

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self):  # OSError's would call __init__(errno, message)
        return type(self), (self.path, self.needed, self.free)


def is_disk_full(error: BaseException) -> bool:
    """True for an ``ENOSPC`` error (:class:`DiskFull` or the plain ``OSError``)."""
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


@contextmanager
def unless_disk_full() -> Iterator[None]:
    """Run the block; a full disk ends it quietly.

    For records whose loss is reported elsewhere (``failure.json`` of a run whose failure the
    bench prints anyway): a second ``ENOSPC`` must not hide the first.
    """
    try:
        yield
    except OSError as error:
        if not is_disk_full(error):
            raise


def format_size(size: int) -> str:
    """Bytes as ``"3.1 MB"`` (decimal units, one decimal)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def free_bytes(folder: Path) -> int | None:
    """Bytes free for this user on ``folder``'s disk; None when it cannot be read."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


@contextmanager
def atomic_write(
    path: Path | str,
    binary: bool = False,
    durable: bool = False,
    needed: Callable[[], int] | None = None,
) -> Iterator[IO[Any]]:
    """An open file whose content replaces ``path`` only when the block ends without error.

    Args:
        path: The target; its folder must exist.
        binary: Open in ``"wb"`` (else text: UTF-8, newlines written as given).
        durable: fsync the file before the rename and its folder after it.
        needed: The file's full size in bytes, asked only when the disk is full, for the
            message; None: the size is unknown.

    Raises:
        DiskFull: The disk filled up; the previous ``path`` and its folder are as before.
    """
    path = Path(path)
    partial = path.with_name(path.name + PARTIAL)
    try:
        text = {} if binary else {"encoding": "utf-8", "newline": ""}  # "\n" on every OS
        with open(partial, "wb" if binary else "w", **text) as file:
            yield file
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException as error:
        partial.unlink(missing_ok=True)
        if is_disk_full(error) and not isinstance(error, DiskFull):
            size = needed() if needed is not None else None
            raise DiskFull(path, size, free_bytes(path.parent)) from error
        raise
    if durable:
        fsync_folder(path.parent)


def write_text(path: Path | str, text: str, durable: bool = False) -> None:
    """``text`` to ``path`` through :func:`atomic_write`."""
    with atomic_write(path, durable=durable, needed=lambda: len(text.encode())) as file:
        file.write(text)


def write_bytes(path: Path | str, data: bytes | memoryview, durable: bool = False) -> None:
    """``data`` to ``path`` through :func:`atomic_write`."""
    size = memoryview(data).nbytes
    with atomic_write(path, binary=True, durable=durable, needed=lambda: size) as file:
        file.write(data)


def write_csv(path: Path | str, frame: Any, **options: Any) -> None:
    """``frame.to_csv(path, **options)`` (a pandas DataFrame) through :func:`atomic_write`."""
    with atomic_write(path) as file:
        frame.to_csv(file, **options)


def write_figure(path: Path | str, figure: Any, **options: Any) -> None:
    """``figure.savefig`` (matplotlib) through :func:`atomic_write`, format from the suffix."""
    with atomic_write(path, binary=True) as file:
        figure.savefig(file, format=Path(path).suffix.lstrip(".") or None, **options)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk.

    A no-op where a folder cannot be opened (Windows).
    """
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
