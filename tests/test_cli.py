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
    ],
)
def test_bad_input_gives_one_line_error(args, message, tmp_path):
    result = runner.invoke(app, ["bench", *args, "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.output


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
