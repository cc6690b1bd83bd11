"""The README and docs/ cannot drift: short README, live links, real flags, one place per fact."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_LINES = 250
GENERATED = {"docs/cli.md"}  # its text is the code's help strings, not prose written here

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.MULTILINE)


def prose(text: str) -> str:
    """``text`` without fenced code blocks (their ``#`` lines are comments, not headings)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor GitHub gives ``page``'s headings (repeats get ``-1``, ``-2``, ...)."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for heading in HEADING.findall(prose(page.read_text())):
        base = slug(heading)
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def relative_links(page: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(prose(page.read_text()))
        if not re.match(r"[a-z]+:", target)  # http(s)://, mailto:
    ]


def test_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail into docs/"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page: Path):
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        target_path = (page.parent / path_part).resolve() if path_part else page
        if not target_path.exists():
            broken.append(f"{target}: no such file")
            continue
        if anchor and target_path.suffix == ".md" and anchor not in anchors(target_path):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_link_checker_catches_dangling_links(tmp_path: Path):
    # Without this, a regex that matched nothing would pass every page above.
    page = tmp_path / "p.md"
    page.write_text("# Top title\n[a](missing.md) [b](#top-title) `[c](x)` [d](https://x.org)\n")
    assert relative_links(page) == ["missing.md", "#top-title", "x"]
    assert anchors(page) == {"top-title"}
    assert slug("Validation splits: `--val-fraction`") == "validation-splits---val-fraction"


def test_readme_headline_figures_are_the_studys():
    """Every figure of the README's headline table stands in docs/results.md as well."""
    results = (REPO / "docs" / "results.md").read_text()
    table = [
        line for line in README.read_text().splitlines() if line.startswith("| ") and "± " in line
    ]
    assert len(table) >= 9, "the README's headline table (one row per strategy) is missing"
    missing = [
        cell
        for row in table
        for cell in (c.strip().strip("*") for c in row.strip("|").split("|")[1:])
        if re.search(r"\d", cell) and cell not in results
    ]
    assert not missing, f"README figures not in docs/results.md: {missing}"


def _commands(page: Path) -> list[tuple[str, list[str]]]:
    """(subcommand, its --flags) for every clssl call in ``page``'s bash blocks."""
    calls = []
    for block in re.findall(r"^```(?:bash|sh)\n(.*?)^```", page.read_text(), re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"\s(?:\||&&|;|>)\s", line.split(" #")[0]):
                call = re.search(r"(?:\bclssl|-m cl_ssl(?=\s)) +([a-z][a-z-]*)(.*)", part)
                speed = re.search(r"-m cl_ssl\.speed\b(.*)", part)
                if call:
                    name, rest = call.groups()
                elif speed:
                    name, rest = "speed", speed.group(1)
                else:
                    continue
                calls.append((name, re.findall(r"(?<!\S)(--[a-z][a-z0-9-]*)", rest)))
    return calls


def test_documented_commands_use_real_flags():
    from cl_ssl.cli import app

    commands = typer.main.get_command(app).commands
    wrong = []
    for page in PAGES:
        for name, flags in _commands(page):
            if name not in commands:
                wrong.append(f"{page.name}: clssl {name} is not a command")
                continue
            command = commands[name]
            if command.context_settings.get("ignore_unknown_options"):
                continue  # parses its own flags (clssl speed, until it moves to typer)
            known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
            wrong += [f"{page.name}: clssl {name} {flag}" for flag in flags if flag not in known]
    assert not wrong, "documented flags that do not exist: " + "; ".join(wrong)


def test_documented_commands_are_found():
    # The parser above must see the README's three examples, or it checks nothing.
    names = [name for name, _ in _commands(README)]
    assert {"bench", "continue", "report"} <= set(names)
    assert ("continue", ["--from", "--periods"]) in _commands(README)


def test_no_paragraph_is_written_twice():
    """A fact lives on one docs page: no prose line of 60+ characters stands on two."""
    where: dict[str, str] = {}
    twice = []
    for page in DOCS:
        if page.relative_to(REPO).as_posix() in GENERATED:
            continue
        for line in prose(page.read_text()).splitlines():
            text = line.strip()
            if len(text) < 60 or text.startswith("|"):
                continue
            if text in where and where[text] != page.name:
                twice.append(f"{where[text]} and {page.name}: {text[:60]}...")
            where.setdefault(text, page.name)
    assert not twice, "; ".join(twice)
