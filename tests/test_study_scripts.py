"""examples/study/*.sh as dry runs (``CLSSL=echo``): which benches each study starts, with
which flags, and that a rerun resumes a started bench instead of training it again."""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import typer

from cl_ssl.cli import app

STUDY = Path(__file__).resolve().parents[1] / "examples" / "study"
SEEDS = ("0", "1", "2")
# SimCLR's strategies of the study, with LwF-SSL's contrastive mode as the bench `lwfc`.
EVERY_STRATEGY = {"naive", "joint", "lwf-ssl", "cassle", "pnr", "replay", "ewc", "pfr", "lwfc"}
# Every study script that starts benches through common.sh (gpu_tier.sh, a standalone script
# for the GPU machine, has tests of its own: tests/test_gpu_tier.py).
SOURCES_COMMON = 'source "$(dirname "$0")/common.sh"'
BENCH_SCRIPTS = sorted(p.name for p in STUDY.glob("*.sh") if SOURCES_COMMON in p.read_text())


def echo_run(script: str, out: Path, *args: str, **env: str) -> str:
    """Run ``script`` with ``clssl`` replaced by ``echo`` and ``$OUT`` = ``out``: its stdout."""
    environment = {**os.environ, "CLSSL": "echo", "OUT": str(out), **env}
    command = ["bash", str(STUDY / script), *args]
    done = subprocess.run(command, env=environment, check=True, capture_output=True, text=True)
    return done.stdout


def dry_run(script: str, out: Path, *args: str, **env: str) -> dict[str, list[str]]:
    """The benches ``script`` starts: {bench name: its clssl arguments} (from their logs)."""
    echo_run(script, out, *args, **env)
    return {log.stem: shlex.split(log.read_text()) for log in sorted(out.glob("*.log"))}


def flag(arguments: list[str], name: str) -> list[str]:
    """Every value given to ``name`` in ``arguments`` (options repeat: --opt, --method-opt)."""
    return [arguments[i + 1] for i, a in enumerate(arguments) if a == name]


@pytest.mark.parametrize(
    ("script", "prefix", "env", "lr"),
    [
        ("split.sh", "split-simclr", {}, "2e-3"),
        # Barlow Twins' rate on stream (a), chosen on validation (docs/results.md, probe pBa).
        ("split.sh", "split-barlow-twins", {"METHOD": "barlow-twins"}, "1e-3"),
        ("periods.sh", "periods", {}, "2e-3"),
    ],
)
def test_a_per_strategy_study_runs_every_strategy_and_seed_once(tmp_path, script, prefix, env, lr):
    benches = dry_run(script, tmp_path, **env)
    expected = {f"{prefix}-{s}-s{seed}" for s in EVERY_STRATEGY for seed in SEEDS}
    assert set(benches) == expected
    for name, arguments in benches.items():
        strategy, seed = re.fullmatch(rf"{prefix}-(.+)-s(\d)", name).groups()
        assert arguments[0] == "bench" and flag(arguments, "--run") == [name]
        assert flag(arguments, "--seeds") == [seed]
        assert flag(arguments, "--lr") == [lr] and flag(arguments, "--batch-size") == ["128"]
        assert flag(arguments, "--out") == [str(tmp_path)]
        # The evaluation every study bench shares, so that its tables can be merged.
        assert flag(arguments, "--eval-protocols") == ["all"]
        assert flag(arguments, "--knn-k") == ["20"]
        options = flag(arguments, "--opt")
        if strategy == "lwfc":
            assert flag(arguments, "--strategy") == ["lwf-ssl"]
            assert options == ["lwf-ssl.mode=contrastive"]
        else:
            assert flag(arguments, "--strategy") == [strategy]
            assert options == (["replay.mem-size=500"] if strategy == "replay" else [])


def test_lanes_share_the_strategies_out(tmp_path):
    """Two lanes ($STRATEGIES, $SEEDS) start exactly the benches of one full run."""
    lane_a = dry_run("periods.sh", tmp_path / "a", STRATEGIES="joint lwfc", SEEDS="1")
    lane_b = dry_run("periods.sh", tmp_path / "b", STRATEGIES="naive", SEEDS="0 2")
    assert set(lane_a) == {"periods-joint-s1", "periods-lwfc-s1"}
    assert set(lane_b) == {"periods-naive-s0", "periods-naive-s2"}


def test_stream_c_keeps_probe_ph_s_budget(tmp_path):
    """periods.sh trains at pH's budget on the drift manifest that it writes first."""
    out = tmp_path / "out"
    printed = echo_run("periods.sh", out, STRATEGIES="naive", SEEDS="0")
    drift = shlex.split(printed.splitlines()[0])
    manifest = str(out / "drift-frames.csv")
    assert drift[:2] == ["drift", "../shared/data/cifar10/train"]
    assert flag(drift, "--out") == [manifest] and flag(drift, "--carry-over") == ["0.75"]
    (bench,) = dry_run("periods.sh", out, STRATEGIES="naive", SEEDS="0").values()
    assert flag(bench, "--manifest") == [manifest]
    assert flag(bench, "--epochs") == ["30"] and flag(bench, "--image-size") == ["16"]
    assert flag(bench, "--test-fraction") == ["0.28"] and not flag(bench, "--val-fraction")


def test_a_started_bench_resumes_with_the_flags_it_would_start_with(tmp_path):
    """A rerun resumes a started bench instead of training it again, and passes the flags
    of a fresh start, so that clssl refuses it if a setting changed since (never mixes)."""
    fresh = dry_run("periods.sh", tmp_path, STRATEGIES="naive", SEEDS="0")["periods-naive-s0"]
    started = tmp_path / "periods-naive-s0"
    started.mkdir()
    (started / "bench.json").write_text("{}")
    benches = dry_run("periods.sh", tmp_path, STRATEGIES="naive", SEEDS="0 1")
    resumed = benches["periods-naive-s0"]
    assert resumed[:3] == ["bench", "--resume", str(started)]
    assert resumed[3:] == fresh[1:]
    assert flag(benches["periods-naive-s1"], "--run") == ["periods-naive-s1"]


def test_a_failed_bench_stops_the_study_and_shows_why(tmp_path):
    """A bench that fails (a refused resume, a crash) stops the script with its last lines on
    stderr; the log holds the rest and no later bench starts."""
    clssl = tmp_path / "clssl"
    clssl.write_text('#!/bin/sh\necho training\necho "error: --lr gives train.lr=0.001"\nexit 2\n')
    clssl.chmod(0o755)
    environment = {**os.environ, "CLSSL": str(clssl), "OUT": str(tmp_path / "out"),
                   "STRATEGIES": "naive joint", "SEEDS": "0"}  # fmt: skip
    done = subprocess.run(
        ["bash", str(STUDY / "split.sh")], env=environment, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "split-simclr-naive-s0 failed" in done.stderr
    assert done.stderr.rstrip().endswith("error: --lr gives train.lr=0.001")
    assert "training" in (tmp_path / "out" / "split-simclr-naive-s0.log").read_text()
    assert not (tmp_path / "out" / "split-simclr-joint-s0.log").exists()


@pytest.mark.parametrize("script", BENCH_SCRIPTS)
def test_study_scripts_use_real_bench_flags(tmp_path, script):
    """A mistyped flag would otherwise show only when the bench starts, hours into a study."""
    params = typer.main.get_command(app).commands["bench"].params
    known = {opt for param in params for opt in param.opts + param.secondary_opts}
    benches = dry_run(script, tmp_path)
    assert benches, f"{script} started no bench"
    wrong = {a for arguments in benches.values() for a in arguments if a.startswith("--")} - known
    assert not wrong, f"{script}: flags clssl bench does not have: {sorted(wrong)}"
