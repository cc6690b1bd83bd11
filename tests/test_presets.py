"""Presets: named experiment files shipped in cl_ssl/presets (`clssl bench --preset NAME`)."""

import json
import re

import pytest
from typer.testing import CliRunner

from cl_ssl.cli import BENCH, app
from cl_ssl.config import BenchConfig
from cl_ssl.experiment_file import load_preset, preset_names, preset_text, tomllib
from cl_ssl.flags import build
from cl_ssl.methods import mixture_names
from cl_ssl.registry import backbones, methods, streams
from cl_ssl.strategy import parse_spec

runner = CliRunner()
PAPERS = ("cassle-cifar100-simclr", "cassle-cifar100-byol", "cassle-cifar100-barlow")
# A CPU smoke: one epoch on a few tiny images of the embedded digits.
SMOKE = ["--epochs", "1", "--max-images", "64", "--image-size", "8", "--batch-size", "32",
         "--device", "cpu", "--no-progress", "--no-checkpoints"]  # fmt: skip


def test_the_demo_the_study_and_the_papers_recipes_are_shipped():
    names = preset_names()
    assert {"demo", "study-pair-simclr", "cassle-imagenet100-byol", *PAPERS} <= set(names)
    listed = runner.invoke(app, ["list", "--presets"])
    assert listed.exit_code == 0
    for name in names:
        assert re.search(rf"^  {name}: \S", listed.output, re.M), name


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_is_a_valid_bench_with_its_source_and_figure(name):
    config = build(BenchConfig, load_preset(name, BENCH))
    streams.get(config.stream)
    backbones.get(config.train.backbone)
    for method in mixture_names(config.train.method):
        methods.get(method)
    parse_spec(config.strategies)
    comment = " ".join(line for line in preset_text(name).splitlines() if line.startswith("#"))
    assert "Source:" in comment and "Published figure" in comment


def test_the_demo_preset_is_make_demos_command():
    config = build(BenchConfig, load_preset("demo", BENCH))
    expected = build(
        BenchConfig,
        {"stream": "digits-periods", "strategies": "naive,lwf-ssl",
         "train": {"epochs": 20, "batch_size": 128}},
    )  # fmt: skip
    assert config == expected


def test_the_study_preset_holds_the_frozen_budget():
    config = build(BenchConfig, load_preset("study-pair-simclr", BENCH))
    assert (config.train.epochs, config.train.batch_size, config.train.lr) == (30, 128, 2e-3)
    assert (config.stream_options.max_images, config.stream_options.image_size) == (1500, 16)
    assert config.train.method_options == {"simclr": {"temperature": "0.2"}}
    assert config.evaluation.knn_k == (20,) and config.evaluation.max_train_images == 2000


def test_a_paper_recipe_holds_the_documented_command():
    """docs/results.md: lars, cosine with 10 warmup epochs, 5 tasks of CIFAR-100, ResNet-18."""
    config = build(BenchConfig, load_preset("cassle-cifar100-simclr", BENCH))
    assert (config.train.optimizer, config.train.schedule) == ("lars", "cosine")
    assert (config.train.lr, config.train.weight_decay, config.train.epochs) == (0.4, 1e-5, 500)
    assert (config.stream_options.dataset, config.stream_options.tasks) == ("cifar100", 5)
    assert config.train.method_options["simclr"] == {
        "temperature": "0.2", "hidden-dim": "2048", "output-dim": "256",
    }  # fmt: skip


def test_config_overrides_the_preset_and_flags_override_both(tmp_path):
    experiment = tmp_path / "e.toml"
    experiment.write_text("[train]\nepochs = 5\nlr = 0.01\n")
    result = runner.invoke(
        app,
        ["bench", "--preset", "demo", "--config", str(experiment), "--epochs", "2",
         "--print-config"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    merged = tomllib.loads(result.output)
    assert merged["train"]["epochs"] == 2 and merged["train"]["lr"] == 0.01
    assert merged["train"]["batch_size"] == 128  # the preset's
    assert merged["strategies"] == "naive,lwf-ssl"


def test_an_unknown_preset_lists_the_shipped_ones():
    result = runner.invoke(app, ["bench", "--preset", "nope"])
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown preset 'nope'; choose from: cassle-")


def test_the_study_preset_runs_as_a_cpu_smoke(tmp_path):
    """The study's own stream needs CIFAR-10 and Fashion-MNIST: the digits stand in here."""
    result = runner.invoke(
        app,
        ["bench", "--preset", "study-pair-simclr", *SMOKE, "--stream", "digits-periods",
         "--strategy", "naive,replay", "--seeds", "0", "--out", str(tmp_path), "--run", "s"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    bench = json.loads((tmp_path / "s" / "bench.json").read_text())
    assert bench["train"]["lr"] == 2e-3 and bench["strategy_options"]["replay"] == {
        "mem-size": "500"
    }
    assert bench["train"]["method_options"] == {"simclr": {"temperature": "0.2"}}


def test_a_paper_recipe_runs_as_a_cpu_smoke(tmp_path):
    """No CIFAR-100 here: the recipe (LARS, cosine, BYOL, ResNet-18) trains on the digits."""
    result = runner.invoke(
        app,
        ["bench", "--preset", "cassle-cifar100-byol", *SMOKE, "--stream", "digits-periods",
         "--strategy", "cassle", "--out", str(tmp_path), "--run", "p"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    bench = json.loads((tmp_path / "p" / "bench.json").read_text())
    train = bench["train"]
    assert (train["optimizer"], train["method"], train["backbone"]) == ("lars", "byol", "resnet18")
    assert train["warmup_epochs"] == 10.0 and train["epochs"] == 1
