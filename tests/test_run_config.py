import json
import re
from dataclasses import asdict, fields
from pathlib import Path

import pytest
import torch

from cl_ssl.config import EvalConfig, TrainConfig
from cl_ssl.run_config import load_run_config, stream_options_from_dict
from cl_ssl.streams import StreamOptions


def config_payload(stream="digits-periods", options=None, **overrides) -> dict:
    """A config.json as the bench writes it (Path values as str)."""
    options = options or StreamOptions(image_size=8, max_images=40)
    payload = {
        "stream": stream,
        "stream_options": {
            k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()
        },
        "train": asdict(TrainConfig(device="cpu")),
        "evaluation": asdict(EvalConfig()),
        "strategy": "naive",
        "strategy_options": {},
        "split_seed": 0,
        "eval_split": "test",
    }
    return {**payload, **overrides}


def write_json(path: Path, payload) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))
    return path


def test_round_trip_from_the_directory_and_from_a_checkpoint(tmp_path):
    options = StreamOptions(data_root=tmp_path / "data", image_size=8, extra={"k": "v"})
    run = tmp_path / "bench" / "naive" / "seed0"
    write_json(run / "config.json", config_payload(options=options, eval_split="val"))
    for where in (run, run / "checkpoints" / "exp3.pt"):
        config = load_run_config(where)
        assert config.stream_options == options
        assert isinstance(config.stream_options.data_root, Path)
        assert config.path == run / "config.json" and config.directory == run
        assert (config.stream, config.strategy, config.eval_split) == (
            "digits-periods",
            "naive",
            "val",
        )
        assert config.train["epochs"] == 1 and config.evaluation["knn_k"] == [20, 200]


def test_config_json_wins_over_results_json(tmp_path):
    write_json(tmp_path / "results.json", config_payload(stream="old"))
    write_json(tmp_path / "config.json", config_payload(stream="new"))
    assert load_run_config(tmp_path).stream == "new"


def test_an_old_results_json_gives_what_it_records(tmp_path):
    old = config_payload()
    for key in ("stream_options", "split_seed", "eval_split"):
        del old[key]
    write_json(tmp_path / "results.json", {**old, "train_seconds": 1.0})
    config = load_run_config(tmp_path / "checkpoints" / "exp0.pt")
    assert config.path.name == "results.json"
    assert config.stream_options is None and config.split_seed is None
    assert config.eval_split == "test"  # every run before the val split used the test split


def test_unknown_stream_options_are_kept_aside_not_lost():
    known = {f.name for f in fields(StreamOptions)}
    options, ignored = stream_options_from_dict({"max_images": 40, "from_the_future": 3})
    assert options.max_images == 40 and ignored == {"from_the_future": 3}
    assert "from_the_future" not in known


def test_missing_and_corrupt_files_are_named(tmp_path):
    where = re.escape(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"no config.json or results.json in {where}"):
        load_run_config(tmp_path / "checkpoints" / "exp0.pt")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json is not readable JSON \(JSONDecodeError\)"):
        load_run_config(tmp_path)
    write_json(tmp_path / "config.json", {"stream": "x"})
    with pytest.raises(ValueError, match=r"not a cl-ssl run config \(lacks train, strategy\)"):
        load_run_config(tmp_path)
    write_json(tmp_path / "config.json", [1, 2])
    with pytest.raises(ValueError, match="not a cl-ssl run config"):
        load_run_config(tmp_path)


def test_runs_from_before_the_probe_backend_read_sklearn_as_they_were_probed(tmp_path):
    from cl_ssl.periodic import checkpoint_bench_config

    old = config_payload()
    del old["evaluation"]["probe_backend"]
    write_json(tmp_path / "old" / "config.json", old)
    assert load_run_config(tmp_path / "old").evaluation["probe_backend"] == "sklearn"
    # `clssl continue` of an old checkpoint on a GPU keeps its probe, not auto's torch.
    assert checkpoint_bench_config(old).evaluation.probe_backend == "sklearn"
    recorded = config_payload(evaluation={**asdict(EvalConfig()), "probe_backend": "torch"})
    write_json(tmp_path / "new" / "config.json", recorded)
    assert load_run_config(tmp_path / "new").evaluation["probe_backend"] == "torch"
    assert checkpoint_bench_config(recorded).evaluation.probe_backend == "torch"


@pytest.mark.parametrize(
    ("given", "recorded", "kept"),
    [
        ("auto", None, "sklearn"),  # a new run on the CPU: auto resolves to scikit-learn
        ("auto", "torch", "torch"),  # started on a GPU, resumed on the CPU: keeps its probe
        ("auto", "sklearn", "sklearn"),
        ("torch", None, "torch"),  # an explicit backend is never overridden
    ],
)
def test_a_resumed_run_keeps_the_probe_backend_it_started_with(tmp_path, given, recorded, kept):
    from cl_ssl.config import BenchConfig, EvalConfig
    from cl_ssl.strategy_run import _kept_evaluation

    if recorded is not None:
        (tmp_path / "config.json").write_text(
            json.dumps({"evaluation": {"probe_backend": recorded}})
        )
    config = BenchConfig(stream="digits-periods", evaluation=EvalConfig(probe_backend=given))
    assert _kept_evaluation(config, tmp_path, torch.device("cpu")).probe_backend == kept
