"""Outputs replace the previous file whole or not at all; a full disk is named."""

from __future__ import annotations

import os
import pickle
import re
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from cl_ssl import atomic
from cl_ssl.atomic import DiskFull, atomic_write, format_size, write_text
from cl_ssl.outputs import write_json, write_summary
from cl_ssl.results import BenchResult, StrategyFailure

REPO = Path(__file__).resolve().parents[1]


def _replace_fails(monkeypatch) -> None:
    def replace(src, dst):
        raise OSError("killed between write and rename")

    monkeypatch.setattr(os, "replace", replace)


def test_a_write_that_fails_midway_leaves_the_previous_file_and_no_partial(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="writer broke"), atomic_write(path) as file:
        file.write("new, half written")
        raise RuntimeError("writer broke")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_a_failed_rename_leaves_every_output_as_it_was(tmp_path, monkeypatch):
    failure = StrategyFailure("naive", 0, 1, 0, 2, "RuntimeError", "boom", tmp_path / "naive")
    write_summary(BenchResult(tmp_path, [], [failure]), "digits-periods", "test")
    write_json(tmp_path / "bench.json", {"epochs": 1}, durable=True)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["bench.json", "failures.json", "summary.md"]

    _replace_fails(monkeypatch)
    other = StrategyFailure("ewc", 1, 3, 0, 0, "ValueError", "other", tmp_path / "ewc")
    for write in (
        lambda: write_summary(BenchResult(tmp_path, [], [other]), "digits-periods", "test"),
        lambda: write_json(tmp_path / "bench.json", {"epochs": 9}, durable=True),
    ):
        with pytest.raises(OSError, match="killed between write and rename"):
            write()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no .partial


def test_a_full_disk_names_the_file_its_size_and_the_free_space(tmp_path, full_disk, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(10**9, 10**9 - 1500, 1500))
    path = tmp_path / "summary.md"
    path.write_text("old\n")
    full_disk.fill()
    text = "x" * 2_500_000
    with pytest.raises(DiskFull) as caught:
        write_text(path, text)
    assert str(caught.value) == (
        f"no space left for {path}: it needs 2.5 MB, 1.5 kB is free on its disk"
    )
    assert caught.value.errno == 28 and caught.value.needed == 2_500_000
    assert path.read_text() == "old\n" and sorted(tmp_path.iterdir()) == [path]
    # It crosses process boundaries (evolve's workers) intact.
    assert str(pickle.loads(pickle.dumps(caught.value))) == str(caught.value)


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0 B"), (999, "999 B"), (1500, "1.5 kB"), (3_140_000, "3.1 MB")]
)
def test_format_size(size, text):
    assert format_size(size) == text


def test_figures_are_written_in_the_format_of_their_suffix(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(1, 1))
    atomic.write_figure(tmp_path / "a.png", figure)
    atomic.write_figure(tmp_path / "a.pdf", figure)
    plt.close(figure)
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "a.pdf").read_bytes()[:4] == b"%PDF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.png"]


# Writes that bypass cl_ssl.atomic. The two exceptions are not outputs replaced whole.
IN_PLACE = re.compile(
    r"\.(write_text|write_bytes|savefig|to_csv)\(|os\.replace\(|open\([^)]*\"[wa]"
)
ALLOWED = {
    ("cl_ssl/ingest.py", "_append_rows"),  # the manifest grows by fsynced appends
    ("cl_ssl/ingest.py", "_download"),  # a VOD download, input to ingest, deleted after
}


def test_every_output_in_the_package_is_written_through_atomic():
    found = []
    for path in sorted((REPO / "cl_ssl").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        if relative == "cl_ssl/atomic.py":
            continue
        function = ""
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if match := re.match(r"\s*def (\w+)", line):
                function = match[1]
            if IN_PLACE.search(line) and (relative, function) not in ALLOWED:
                found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, "write these through cl_ssl.atomic:\n" + "\n".join(found)
