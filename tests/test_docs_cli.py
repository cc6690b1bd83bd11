"""docs/cli.md is generated from the settings' declarations and must be up to date."""

from pathlib import Path

from cl_ssl.cli import BENCH
from cl_ssl.docs_cli import render

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_docs_cli_md_is_the_generated_page():
    assert PAGE.read_text() == render(), "docs/cli.md is out of date: run `make docs`"


def test_the_page_gives_every_bench_setting_its_flag_and_file_key():
    page = render().split("## `clssl continue`")[0]  # the bench section
    for option in BENCH:
        row = next(line for line in page.splitlines() if line.startswith(f"| `{option.flag}`"))
        assert f"`{option.path}`" in row and option.setting.help.split()[0] in row
