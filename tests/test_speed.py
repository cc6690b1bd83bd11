"""clssl speed: protocol, ratios, data and isolation (nothing here asserts a speed)."""

import math
import os
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from cl_ssl.speed import SpeedConfig, run_speed, speed_table, write_report
from cl_ssl.speed.data import DataSource
from cl_ssl.speed.run import check_rows
from cl_ssl.speed.table import COLUMNS, SpeedReport
from cl_ssl.speed.timing import Stopwatch, peak_rss_mb

TINY = dict(
    batch_size=16,
    image_size=16,
    windows=1,
    steps=2,
    warmup=1,
    first_experience_steps=1,
    data="synthetic",
    pool_size=48,
    device="cpu",
    threads=1,
)


def fake_row(name, images_per_s, images_per_step=256.0, **extra):
    step = images_per_step / images_per_s
    return {
        "row": name,
        "images_per_s": images_per_s,
        "s_per_step": step,
        "images_per_step": images_per_step,
        "window_images_per_s": [images_per_s],
        "peak_rss_mb": 900.0,
        "workers": 0,
        **extra,
    }


def test_tiny_run_times_a_loop_and_a_strategy_on_experience_1_each_in_its_own_process():
    config = SpeedConfig(**TINY, rows=("loop-batched", "lwf-ssl"))
    report = run_speed(config)
    loop, lwf = report.rows
    assert "error" not in loop and "error" not in lwf, report.rows
    assert list(report.table["row"]) == ["loop-batched", "lwf-ssl"]
    assert list(report.table.columns) == COLUMNS
    for row in report.rows:
        assert math.isfinite(row["images_per_s"]) and row["images_per_s"] > 0
        assert row["images_per_step"] == 16
        assert row["peak_rss_mb"] > 0 and row["threads"] == 1
        assert row["peak_gpu_mb"] is None  # CPU: the column stays empty
    # The strategy's warm-up holds experience 0's training too, so it outlasts the loop's.
    assert 0 < loop["warmup_s"] < lwf["warmup_s"]
    # Isolation: two fresh processes; the loop never imported Avalanche, the strategy did.
    assert len({loop["pid"], lwf["pid"], os.getpid()}) == 3
    assert not loop["imported_avalanche"] and lwf["imported_avalanche"]
    # Timed on experience 1, with the teacher distilling (exactly 0 without a teacher).
    assert lwf["experience"] == 1
    assert lwf["loss_terms"]["distill"] > 0 and lwf["loss_terms"]["ssl"] > 0
    ratio = report.table.set_index("row").loc["lwf-ssl", "vs loop-batched"]
    assert ratio == pytest.approx(lwf["images_per_s"] / loop["images_per_s"])


def test_ratios_against_loops_naive_and_the_model_step():
    rows = [
        fake_row("loop-lightly", 100.0),
        fake_row("loop-batched", 200.0),
        fake_row("data", 900.0),
        fake_row("step", 300.0),
        fake_row("naive", 250.0),
        # replay with mode=double: twice the images per step at the same images/s
        fake_row("replay", 250.0, images_per_step=512.0),
        {"row": "ewc", "error": "boom"},
    ]
    table = speed_table(rows).set_index("row")
    assert table.loc["naive", "vs loop-batched"] == pytest.approx(1.25)
    assert table.loc["naive", "vs loop-lightly"] == pytest.approx(2.5)
    assert pd.isna(table.loc["loop-batched", "vs loop-batched"])
    assert table.loc["replay", "step time vs naive"] == pytest.approx(2.0)
    assert table.loc["replay", "image time vs naive"] == pytest.approx(1.0)
    assert table.loc["data", "vs step"] == pytest.approx(3.0)
    assert pd.isna(table.loc["naive", "vs step"])
    assert pd.isna(table.loc["data", "step time vs naive"])
    assert table.loc["ewc", "note"] == "boom" and pd.isna(table.loc["ewc", "vs loop-batched"])
    # Without the reference row the ratio is empty, never a made-up number.
    assert speed_table([fake_row("naive", 250.0)])["vs loop-batched"].isna().all()


def test_stopwatch_windows_count_images_after_warmup(monkeypatch):
    clock = iter([10.0, 12.0, 13.0])  # warm-up ends at 10; windows of 2 s and 1 s
    monkeypatch.setattr("cl_ssl.speed.timing.time.perf_counter", lambda: next(clock))
    watch = Stopwatch(warmup=2, windows=2, steps=2)
    done = [watch.tick(images) for images in (99, 99, 10, 10, 20, 20)]
    assert done == [False] * 5 + [True]
    result = watch.result()
    assert result["window_images_per_s"] == [10.0, 40.0]
    assert result["images_per_s"] == 25.0 and result["s_per_step"] == 0.75
    assert result["images_per_step"] == 15.0
    with pytest.raises(RuntimeError, match="finished"):
        watch.tick(1)


def test_warmup_seconds_run_from_begin_to_the_first_window(monkeypatch):
    clock = iter([7.0, 10.0, 12.0])  # begin at 7, warm-up ends at 10, one 2 s window
    monkeypatch.setattr("cl_ssl.speed.timing.time.perf_counter", lambda: next(clock))
    watch = Stopwatch(warmup=1, windows=1, steps=1)
    watch.begin()
    assert not watch.tick(5) and watch.tick(5)
    assert watch.result()["warmup_s"] == 3.0
    assert Stopwatch(1, 1, 1).begun is None  # a row that never calls begin reports None


def test_compile_reaches_the_strategy_rows_train_config():
    from cl_ssl.speed.strategy_rows import train_config

    assert train_config(SpeedConfig(**TINY, compile=True)).compile
    assert not train_config(SpeedConfig(**TINY)).compile


def test_peak_rss_of_a_child_is_its_own_not_its_launchers():
    ballast = bytearray(400 * 2**20)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touch every page: resident now
    code = "from cl_ssl.speed.timing import peak_rss_mb; print(peak_rss_mb())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    # ru_maxrss would report at least this process's size (Linux carries it over exec).
    assert 0 < float(child.stdout) < peak_rss_mb() - 300
    del ballast


def test_rows_outside_avalanche_mirror_the_bench_model_and_workers():
    from cl_ssl.config import TrainConfig
    from cl_ssl.speed.loops import cl_ssl_model
    from cl_ssl.strategy_run import build_model, loader_options

    ours, _ = cl_ssl_model(SpeedConfig(image_size=16))
    bench, _ = build_model(TrainConfig(), 16)
    shapes = {k: v.shape for k, v in ours.state_dict().items()}
    assert shapes == {k: v.shape for k, v in bench.state_dict().items()}
    config = SpeedConfig(data="synthetic", pool_size=4, image_size=8)
    with DataSource(config) as source:
        for storage in ("memory", "disk"):
            stream = SimpleNamespace(
                experiences=[SimpleNamespace(train=source.dataset(4, storage))]
            )
            expected = loader_options(None, stream, torch.device("cpu"))["num_workers"]
            assert config.cl_ssl_workers(storage) == expected


def test_data_source_serves_the_same_images_from_memory_and_from_files():
    with DataSource(SpeedConfig(data="synthetic", pool_size=8, image_size=16)) as source:
        memory = source.dataset(10, "memory")
        disk = source.dataset(10, "disk", offset=1)
        assert len(memory) == len(disk) == 10
        assert torch.equal(memory[8][0], memory[0][0])  # the pool of 8 is cycled
        image, _ = disk[0]
        assert image.dtype == torch.uint8 and image.shape == (3, 16, 16)
        # JPEG is lossy: the decoded file is close to, not equal to, the memory image.
        difference = (image.float() - memory[1][0].float()).abs().mean()
        assert difference < 4


def test_bad_config_and_unknown_rows_fail_with_the_fix():
    with pytest.raises(ValueError, match="--batch-size"):
        SpeedConfig(batch_size=1)
    with pytest.raises(ValueError, match="choose from: auto, cifar10, synthetic"):
        SpeedConfig(data="imagenet")
    with pytest.raises(ValueError, match="loop-batched.*naive"):
        check_rows(SpeedConfig(rows=("loop-foo",), data="synthetic"))
    with pytest.raises(FileNotFoundError, match="--data synthetic"):
        check_rows(SpeedConfig(rows=("naive",), data="cifar10", data_root="/nonexistent"))
    config = SpeedConfig(rows=("step", "lwf-ssl+replay"), strategy_options={"replay": {"m": "1"}})
    assert SpeedConfig.from_json(config.to_json()) == config


def test_report_files(tmp_path):
    rows = [fake_row("loop-batched", 200.0), fake_row("naive", 250.0)]
    report = SpeedReport({"cpu": "x"}, speed_table(rows), rows)
    write_report(report, tmp_path / "speed.csv")
    assert list(pd.read_csv(tmp_path / "speed.csv")["row"]) == ["loop-batched", "naive"]
    write_report(report, tmp_path / "speed.json")
    assert (tmp_path / "speed.json").read_text().count('"row": "naive"') == 2
    with pytest.raises(ValueError, match=".csv or .json"):
        write_report(report, tmp_path / "speed.txt")


def _tcmalloc() -> str | None:
    found = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    return next((ln.split()[-1] for ln in found.splitlines() if "libtcmalloc" in ln), None)


TCMALLOC = _tcmalloc()
MALLOC_CODE = "from cl_ssl.speed.timing import malloc_name; print(malloc_name())"


def _malloc_in_child(preload: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if preload is not None:
        env["LD_PRELOAD"] = preload
    child = subprocess.run(
        [sys.executable, "-c", MALLOC_CODE], capture_output=True, text=True, env=env
    )
    return child.stdout.strip()


def test_the_header_names_glibc_without_a_preloaded_allocator():
    from cl_ssl.speed.timing import malloc_name

    assert _malloc_in_child(None) == "glibc"
    assert malloc_name() in ("glibc", "tcmalloc", "jemalloc")


@pytest.mark.skipif(
    TCMALLOC is None, reason="no tcmalloc here (Debian: apt-get install libtcmalloc-minimal4)"
)
def test_the_header_names_a_preloaded_tcmalloc():
    assert _malloc_in_child(TCMALLOC) == "tcmalloc"
