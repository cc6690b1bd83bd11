"""Experiment files (cl_ssl.experiment_file): `clssl bench --config FILE`, `--print-config`."""

import json

import pytest
from typer.testing import CliRunner

from cl_ssl.cli import app
from cl_ssl.config import BenchConfig
from cl_ssl.experiment_file import load_file, to_toml, tomllib
from cl_ssl.flags import build, options

runner = CliRunner()
TINY = ["--stream", "digits-periods", "--strategy", "naive", "--image-size", "8",
        "--max-images", "30", "--batch-size", "16", "--device", "cpu", "--no-progress"]  # fmt: skip


def printed(args):
    result = runner.invoke(app, ["bench", *args, "--print-config"])
    assert result.exit_code == 0, result.output
    return result.output


def test_print_config_then_config_reproduces_the_bench(tmp_path):
    flags = [*TINY, "--knn-k", "5"]
    first = runner.invoke(app, ["bench", *flags, "--out", str(tmp_path), "--run", "flags"])
    assert first.exit_code == 0, first.output
    experiment = tmp_path / "e.toml"
    experiment.write_text(printed([*flags, "--out", str(tmp_path), "--run", "flags"]))
    # the file names the first run; the command line's --run overrides it
    second = runner.invoke(app, ["bench", "--config", str(experiment), "--run", "file"])
    assert second.exit_code == 0, second.output
    one, two = (json.loads((tmp_path / r / "bench.json").read_text()) for r in ("flags", "file"))
    assert one.pop("run_name") == "flags" and two.pop("run_name") == "file"
    assert one == two
    assert one["evaluation"]["knn_k"] == [5] and one["stream_options"]["image_size"] == 8
    config = [(tmp_path / r / "naive" / "seed0" / "config.json").read_text() for r in ("flags",
              "file")]  # fmt: skip
    assert config[0] == config[1]
    results = [json.loads((tmp_path / r / "naive" / "seed0" / "results.json").read_text())
               for r in ("flags", "file")]  # fmt: skip
    assert results[0]["matrices"] == results[1]["matrices"]  # same seed, same numbers


def test_flags_override_the_file_and_option_dicts_merge(tmp_path):
    experiment = tmp_path / "e.toml"
    experiment.write_text(
        'stream = "digits-periods"\nstrategies = "lwf-ssl"\n'
        'strategy_options = { lwf-ssl = { lambda = 2.5, mode = "contrastive" } }\n'
        "[train]\nepochs = 3\nlr = 1\n"
    )
    text = printed(["--config", str(experiment), "--epochs", "2", "--opt", "lwf-ssl.lambda=4"])
    merged = tomllib.loads(text)
    assert merged["train"]["epochs"] == 2  # the flag
    assert merged["train"]["lr"] == 1.0  # the file (an integer where a float is expected)
    assert merged["strategy_options"] == {"lwf-ssl": {"lambda": "4", "mode": "contrastive"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('stream = "digits-periods"\n\n[train]\nepoch = 3\n',
         "line 4: unknown key 'train.epoch': did you mean 'train.epochs'?"),
        ('stream = "digits-periods"\n[train]\nepochs = "3"\n',
         "line 3: train.epochs = '3' should be an integer"),
        ('stream = "digits-periods"\n[evaluation]\nknn_k = 20\n',
         "line 3: evaluation.knn_k = 20 should be a list"),
        ('stream = "digits-periods"\nlinear_probe = false\n',
         "line 2: unknown key 'linear_probe': did you mean 'evaluation.linear_probe'?"),
        ('stream = "digits-periods"\n[evaluation]\nseed = 3\n',
         "line 3: unknown key 'evaluation.seed'"),  # follows --split-seed, never set alone
        ('stream = "digits-periods\n', "Illegal character"),
    ],
)  # fmt: skip
def test_bad_files_are_one_line_errors_naming_file_line_and_key(tmp_path, text, message):
    experiment = tmp_path / "e.toml"
    experiment.write_text(text)
    result = runner.invoke(app, ["bench", "--config", str(experiment), "--out", str(tmp_path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {experiment}"), result.output
    assert message in lines[0]


def test_a_missing_file_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["bench", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --config {tmp_path / 'nope.toml'}: no such file"


def test_the_toml_writer_round_trips_every_value_type(tmp_path):
    schema = options(BenchConfig)
    config = build(
        BenchConfig,
        {
            "stream": 'odd "name"',
            "strategy_options": {"lwf-ssl": {"lambda": "1e-3"}, "x y": {"k.z": "v"}},
            "training_seeds": (0, 2),
            "train": {"lr": 1e-6, "channels_last": False, "method_options": {}},
            "stream_options": {"data_root": tmp_path, "extra": {"frames": "8"}},
            "evaluation": {"knn_k": (1, 2, 3), "max_train_images": None},
        },
    )
    path = tmp_path / "e.toml"
    path.write_text(to_toml(config, schema))
    again = build(BenchConfig, load_file(path, schema))
    # max_train_images=None cannot be written (TOML has no null): it reads back as the default
    assert again == build(
        BenchConfig,
        {**_tree(config), "evaluation": {"knn_k": (1, 2, 3)}},
    )
    assert again.stream_options.data_root == tmp_path and again.stream == 'odd "name"'


def _tree(config):
    from cl_ssl.flags import to_tree

    tree = to_tree(config)
    del tree["evaluation"]
    return tree
