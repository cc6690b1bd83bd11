"""``python -m cl_ssl.speed``: ``clssl speed`` on its own (``--row NAME``: one row, a child)."""

from __future__ import annotations

import typer

import cl_ssl  # noqa: F401  (silences third-party warnings before they are imported)
from cl_ssl.speed.command import speed


def main(argv: list[str] | None = None) -> None:
    """Run ``clssl speed`` with ``argv`` (default: the process's arguments)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
    app.command()(speed)
    app(args=argv, prog_name="python -m cl_ssl.speed")


if __name__ == "__main__":
    main()
