"""cl_ssl.flags: each setting declared once, and every command built from the declarations."""

import ast
import dataclasses
import inspect
import re
import typing
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cl_ssl import cli, flags
from cl_ssl.config import (
    BenchConfig,
    ContinueConfig,
    DriftConfig,
    EvalConfig,
    FinetuneConfig,
    IngestConfig,
    StreamOptions,
    TrainConfig,
)
from cl_ssl.evolve.run import EvolveSettings
from cl_ssl.evolve.search import EvolveConfig
from cl_ssl.speed.command import speed
from cl_ssl.speed.config import SpeedConfig

SETTINGS = (BenchConfig, TrainConfig, StreamOptions, EvalConfig, SpeedConfig, EvolveConfig)
SETTINGS += (ContinueConfig, FinetuneConfig, IngestConfig, DriftConfig)
ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def own_fields(cls):
    """The fields of ``cls`` that are not settings dataclasses themselves."""
    hints = typing.get_type_hints(cls)
    return [f for f in dataclasses.fields(cls) if not flags.nested(hints[f.name])]


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_every_field_is_declared_once_with_its_help(cls):
    """One ``setting(help=...)`` per field; the docstring does not describe fields again."""
    for f in own_fields(cls):
        declared = f.metadata.get("setting")
        assert declared is not None, f"{cls.__name__}.{f.name} has no setting()"
        assert declared.help.strip().endswith((".", ")")), f"{cls.__name__}.{f.name}"
        # a field without a flag is filled from others: its help says from which
        assert declared.flag or "flag" in declared.help or declared.same_as, f.name
    # A second description of the fields (an "Attributes:"/"Args:" list) would drift.
    doc = inspect.getdoc(cls) or ""
    listed = [f.name for f in own_fields(cls) if re.search(rf"^\s+{f.name}:", doc, re.M)]
    assert not listed, f"{cls.__name__}'s docstring describes {listed} again"


def test_no_command_redeclares_a_setting():
    """The commands' own parameters never repeat a field of the settings they build."""
    schemas = {
        "bench": BenchConfig,
        "continue_": ContinueConfig,
        "finetune": FinetuneConfig,
        "ingest": IngestConfig,
        "drift": DriftConfig,
        "evolve": EvolveConfig,
        "speed": SpeedConfig,
    }
    functions = {"bench": cli.bench, "continue_": cli.continue_, "evolve": cli.evolve}
    functions |= {"finetune": cli.finetune, "ingest": cli.ingest, "drift": cli.drift}
    functions["speed"] = speed
    for name, func in functions.items():
        code = func.__code__
        own = set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
        fields = {o.field.name for o in flags.options(schemas[name])}
        fields |= {o.name for o in flags.options(schemas[name])}
        assert not own & fields, f"clssl {name} declares {own & fields} again"
    # and cli.py spells no setting's flag as a typer option of its own
    tree = ast.parse((ROOT / "cl_ssl" / "cli.py").read_text())
    declared = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", "") == "Option"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    every_flag = {flag for o in flags.options(BenchConfig) for flag in o.flags}
    assert not declared & every_flag


@pytest.mark.parametrize(
    ("command", "cls"),
    [
        (["bench"], BenchConfig),
        (["speed"], SpeedConfig),
        (["evolve"], EvolveConfig),
        (["continue"], ContinueConfig),
        (["continue"], StreamOptions),
        (["finetune"], FinetuneConfig),
        (["ingest"], IngestConfig),
        (["drift"], DriftConfig),
    ],
)
def test_help_lists_every_field_with_its_help(command, cls):
    shown = runner.invoke(cli.app, [*command, "--help"], env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    for option in flags.options(cls):
        shown_as = option.name if option.setting.argument else option.flag
        assert re.search(rf"{re.escape(shown_as)}\b", text), shown_as
        first_words = " ".join(option.setting.help.split()[:4])
        assert first_words in text, (option.flag, first_words)


def test_bench_help_lists_every_field_of_every_settings_class():
    shown = runner.invoke(cli.app, ["bench", "--help"], env={"COLUMNS": "400"})
    every = flags.options(BenchConfig, every=True)
    # BenchConfig's own fields plus those of TrainConfig, StreamOptions and EvalConfig
    assert len(every) == sum(len(own_fields(c)) for c in SETTINGS[:4])
    for option in every:
        if option.setting.flag:
            assert option.flag in shown.output
        else:  # derived: says where from
            assert option.setting.same_as == "stream_options.split_seed"


def test_flags_build_the_dataclasses_they_declare():
    """--split-seed sets the evaluation's seed too; text flags become tuples and dicts."""
    app = typer.Typer()
    seen = {}

    @app.command()
    @flags.add_flags((flags.options(BenchConfig), None))
    def run(ctx: typer.Context, **values) -> None:
        tree = {}
        for path, value in flags.given_values(ctx, flags.options(BenchConfig)).items():
            flags.set_path(tree, path, value)
        seen["config"] = flags.build(BenchConfig, tree)

    result = runner.invoke(
        app,
        ["--stream", "digits-periods", "--strategy", "naive,lwf-ssl", "--split-seed", "3",
         "--knn-k", "5,10", "--opt", "lwf-ssl.lambda=2", "--opt", "lwf-ssl.mode=contrastive",
         "--method-opt", "simclr.temperature=0.2", "--stream-opt", "frames=4", "--seeds", "1,2",
         "--no-linear-probe", "--eval-protocols", "all", "--run-name", "x"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert config.stream_options.split_seed == 3 and config.evaluation.seed == 3
    assert config.evaluation.knn_k == (5, 10) and config.evaluation.protocols == ("all",)
    assert config.strategy_options == {"lwf-ssl": {"lambda": "2", "mode": "contrastive"}}
    assert config.train.method_options == {"simclr": {"temperature": "0.2"}}
    assert config.stream_options.extra == {"frames": "4"}
    assert config.training_seeds == (1, 2) and config.run_name == "x"
    assert config.evaluation.linear_probe is False
    # what was not given keeps the dataclasses' defaults
    assert config.train == TrainConfig(method_options={"simclr": {"temperature": "0.2"}})


@pytest.mark.parametrize(
    ("cls", "values", "message"),
    [
        (TrainConfig, {"epochs": 0}, "--epochs must be at least 1, got 0"),
        (TrainConfig, {"batch_size": 1}, "--batch-size must be at least 2, got 1: an SSL step"),
        (TrainConfig, {"lr": 0.0}, "--lr must be positive, got 0.0"),
        (TrainConfig, {"momentum": 1.0}, r"--momentum must be in \[0, 1\), got 1.0"),
        (TrainConfig, {"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; choose from: adam"),
        (StreamOptions, {"max_bad_fraction": 1.5}, r"--max-bad-fraction must be in \[0, 1\]"),
        (StreamOptions, {"val_fraction": 1.0}, r"--val-fraction must be in \[0, 1\)"),
        (EvalConfig, {"knn_k": (0,)}, r"--knn-k values must be at least 1, got \(0,\)"),
        (EvalConfig, {"protocols": ("every",)}, r"unknown protocol\(s\) \['every'\]"),
        (EvalConfig, {"max_train_images": 0}, "--eval-max-train must be at least 1"),
        (SpeedConfig, {"threads": 0}, "--threads must be at least 1"),
        (SpeedConfig, {"rows": ()}, "--rows is empty"),
        (SpeedConfig, {"storage": "tape"}, "unknown storage 'tape'; choose from: memory, disk"),
    ],
)
def test_declared_checks_name_the_flag(cls, values, message):
    with pytest.raises(ValueError, match=message):
        cls(**values)


def test_a_boundary_value_passes_its_check():
    assert TrainConfig(batch_size=2, momentum=0.0, weight_decay=0.0).batch_size == 2
    assert StreamOptions(max_bad_fraction=1.0).max_bad_fraction == 1.0


def test_option_dicts_merge_key_by_key():
    tree = {"strategy_options": {"lwf-ssl": {"lambda": "1", "mode": "relational"}}}
    flags.set_path(tree, "strategy_options", {"lwf-ssl": {"lambda": "2"}, "ewc": {"x": "1"}})
    assert tree["strategy_options"] == {
        "lwf-ssl": {"lambda": "2", "mode": "relational"},
        "ewc": {"x": "1"},
    }


def test_evolve_settings_declare_the_fitness_flag():
    (fitness,) = flags.options(EvolveSettings, recurse=False)
    assert fitness.flag == "--fitness" and fitness.default == "nmi"


def test_a_field_without_default_is_required_and_may_be_an_argument(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Job:
        source: Path = flags.setting(help="Input folder.", argument=True)
        out: Path = flags.setting(help="Output file.")
        size: int = flags.setting(3, help="Size.", check=flags.at_least(1))

        def __post_init__(self) -> None:
            flags.check_fields(self)

    app = typer.Typer()
    seen = []

    @app.command()
    @flags.add_flags((flags.options(Job), None))
    def job(ctx: typer.Context, **values) -> None:
        seen.append(flags.build(Job, flags.given_values(ctx, flags.options(Job))))

    assert runner.invoke(app, [str(tmp_path)]).exit_code == 2  # --out is required
    assert runner.invoke(app, ["--out", "x.csv"]).exit_code == 2  # SOURCE is required
    result = runner.invoke(app, [str(tmp_path), "--out", "x.csv", "--size", "5"])
    assert result.exit_code == 0, result.output
    assert seen == [Job(tmp_path, Path("x.csv"), 5)]
    refused = runner.invoke(app, [str(tmp_path), "--out", "x.csv", "--size", "0"])
    assert isinstance(refused.exception, ValueError) and "--size must be at least 1" in str(
        refused.exception
    )
