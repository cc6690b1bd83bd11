import subprocess
import sys

import pytest
from typer.testing import CliRunner

from cl_ssl.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--stream", "nope"],
            "error: unknown stream 'nope'; choose from: cifar10-split, digits-periods",
        ),
        (
            ["--stream", "digits-periods", "--strategy", "nope"],
            "error: unknown strategy 'nope'; choose from:",
        ),
        (
            ["--stream", "digits-periods", "--backbone", "vgg"],
            "error: unknown backbone 'vgg'; choose from:",
        ),
        (
            ["--stream", "digits-periods", "--opt", "naive.x=1"],
            "error: unknown option 'x' for naive",
        ),
        (["--stream", "digits-periods", "--epochs", "0"], "error: --epochs must be at least 1"),
        (
            ["--stream", "digits-periods", "--batch-size", "1"],
            "error: --batch-size must be at least 2",
        ),
        # Options are checked before any data is read: the missing data root is never reached.
        (
            ["--stream", "cifar10-split", "--strategy", "lwf-ssl", "--opt", "lwf-ssl.lamda=1"],
            "error: unknown option 'lamda' for lwf-ssl",
        ),
        (
            ["--stream", "cifar10-split", "--strategy", "lwf-ssl", "--opt", "lwf-ssl.lambda=abc"],
            "error: option lwf-ssl.lambda='abc'",
        ),
        (
            ["--stream", "cifar10-split", "--strategy", "naive", "--opt", "ewc.lambda=1"],
            "error: --opt ewc.* given but 'ewc' is not in --strategy",
        ),
        (["--stream", "cifar10-split"], "error: CIFAR-10 needs --data-root"),
        (["--stream", "cifar10-split", "--run", "named"], "error: CIFAR-10 needs --data-root"),
        # Both would train into one naive/seed0/ (tiny, should the check be gone).
        (
            ["--stream", "digits-periods", "--strategy", "naive,lwf-ssl,naive", "--image-size",
             "8", "--max-images", "40", "--batch-size", "32"],
            "error: --strategy names 'naive' twice: name each run once",
        ),
        # Clashing compositions: PNR's term holds CaSSLe's (it would count twice, with two
        # predictors); lwf-ssl and cassle both add 'distill' (it failed after experience 0).
        (
            ["--stream", "digits-periods", "--strategy", "naive,cassle+pnr", "--image-size",
             "8", "--max-images", "40", "--batch-size", "32"],
            "error: --strategy cassle+pnr: 'cassle' and 'pnr' both own CaSSLe's predictor and "
            "distillation term (PNR's regularization contains them): compose only one of them, "
            "or compare them as separate runs (--strategy cassle,pnr)",
        ),
        (
            ["--stream", "digits-periods", "--strategy", "lwf-ssl+cassle", "--image-size",
             "8", "--max-images", "40", "--batch-size", "32"],
            "error: --strategy lwf-ssl+cassle: 'lwf-ssl' and 'cassle' both own the 'distill' "
            "loss term",
        ),
        # Non-finite float options would only fail mid-training.
        (
            ["--stream", "cifar10-split", "--strategy", "lwf-ssl", "--opt", "lwf-ssl.lambda=inf"],
            "error: option lwf-ssl.lambda='inf': expected a finite number",
        ),
        (
            ["--stream", "cifar10-split", "--strategy", "ewc", "--opt", "ewc.decay=nan"],
            "error: option ewc.decay='nan': expected a finite number",
        ),
        (
            ["--stream", "cifar10-split", "--method-opt", "simclr.temperature=-inf"],
            "error: option simclr.temperature='-inf': expected a finite number",
        ),
        (
            ["--stream", "cifar10-split", "--method", "simclr+vicreg", "--method-opt",
             "vicreg.weight=nan"],
            "error: option vicreg.weight='nan': expected a finite number",
        ),
    ],
)  # fmt: skip
def test_bad_input_gives_one_line_error(args, message, tmp_path):
    out = tmp_path / "runs"
    result = runner.invoke(app, ["bench", *args, "--out", str(out), "--no-progress"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.output
    assert not out.exists()  # refused input leaves nothing behind, not even the run folder


def test_bench_prints_the_loss_matrix(tmp_path):
    result = runner.invoke(
        app,
        [
            "bench",
            "--stream",
            "digits-periods",
            "--strategy",
            "naive",
            "--image-size",
            "8",
            "--max-images",
            "30",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--run",
            "cli",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "SSL loss R[i][j] (naive, seed 0)" in result.output
    assert "final acc (all-classes linear)" in result.output
    assert (tmp_path / "cli" / "naive" / "seed0" / "metrics.csv").exists()


def test_list_shows_every_registry():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for expected in ("naive", "digits-periods", "small_resnet", "simclr", "digits"):
        assert expected in result.output


def test_list_prints_options_of_strategies_and_methods():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "      --opt lwf-ssl.lambda=  (float, default 1.0)" in lines
    assert "      --method-opt simclr.hidden-dim=  (int | None, default None)" in lines
    assert "  naive: Adds nothing to the template: plain finetuning." in lines
    assert lines.index("methods:") < lines.index("streams:") < lines.index("datasets:")


@pytest.mark.parametrize("args", [["list"], ["--help"], ["bench", "--help"]])
def test_help_and_list_import_no_training_stack(args, tmp_path):
    """`clssl --help` and `clssl list` stay fast: no torch, Avalanche, Lightly, Kornia, pandas."""
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from cl_ssl.cli import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = ('torch', 'avalanche', 'lightly', 'kornia', 'pandas')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_speed_passes_its_flags_through_to_the_speed_tool():
    shown = runner.invoke(app, ["speed", "--help"])
    assert shown.exit_code == 0 and "--batch-size" in shown.output and "--rows" in shown.output
    bad = runner.invoke(app, ["speed", "--rows", "no-such-row", "--windows", "1"])
    assert bad.exit_code == 2 and "no-such-row" in bad.output
