from dataclasses import dataclass
from typing import Literal

import pytest

from cl_ssl.options import describe, parse_options


@dataclass(frozen=True)
class Opts:
    lambda_: float = 1.0
    mem_size: int = 10
    mode: Literal["relational", "contrastive"] = "relational"
    online: bool = False
    decay: float | None = None
    sizes: tuple[int, ...] = (1, 2)


def test_values_are_converted_to_field_types():
    opts = parse_options(
        Opts,
        {
            "lambda": "0.5",
            "mem-size": "7",
            "mode": "contrastive",
            "online": "yes",
            "decay": "0.9",
            "sizes": "3,4",
        },
        "s",
    )
    assert opts == Opts(0.5, 7, "contrastive", True, 0.9, (3, 4))


def test_none_for_optional():
    assert parse_options(Opts, {"decay": "none"}, "s").decay is None


def test_unknown_key_names_choices():
    with pytest.raises(ValueError, match="unknown option 'lamda' for lwf-ssl; choose from: lambda"):
        parse_options(Opts, {"lamda": "1"}, "lwf-ssl")


@pytest.mark.parametrize(
    ("key", "value"), [("mem-size", "ten"), ("mode", "other"), ("online", "maybe")]
)
def test_bad_values_name_the_option(key, value):
    with pytest.raises(ValueError, match=f"option s.{key}="):
        parse_options(Opts, {key: value}, "s")


def test_describe_lists_defaults():
    rows = dict((k, d) for k, _, d in describe(Opts))
    assert rows["lambda"] == "1.0" and rows["mem-size"] == "10"


def test_describe_spells_out_literal_choices():
    types = {k: t for k, t, _ in describe(Opts)}
    assert types["mode"] == "relational|contrastive" and types["decay"] == "float | None"


@pytest.mark.parametrize(
    ("key", "value"),
    [("lambda", "inf"), ("lambda", "-inf"), ("lambda", "nan"), ("lambda", "1e999"),
     ("decay", "nan"), ("decay", "inf")],
)  # fmt: skip
def test_non_finite_floats_are_refused_naming_the_option(key, value):
    with pytest.raises(ValueError) as error:
        parse_options(Opts, {key: value}, "lwf-ssl")
    assert str(error.value) == f"option lwf-ssl.{key}={value!r}: expected a finite number"
    assert parse_options(Opts, {key: "1e300"}, "lwf-ssl")  # large but finite is fine


def test_options_are_checked_by_parsing_nothing_is_built(monkeypatch):
    """A bench refuses a bad --opt or --method-opt before it builds any plugin or method."""
    from cl_ssl.methods import parse_method
    from cl_ssl.registry import methods, strategies
    from cl_ssl.strategy import check_options, parse_spec

    def never(self, *args, **kwargs):
        raise AssertionError("built to validate")

    for cls in (strategies.get("lwf-ssl"), methods.get("simclr"), methods.get("vicreg")):
        monkeypatch.setattr(cls, "__init__", never)
    check_options(parse_spec("naive,lwf-ssl"), {"lwf-ssl": {"lambda": "2", "mode": "contrastive"}})
    with pytest.raises(ValueError, match="lwf-ssl.lambda must be >= 0, got -1.0"):
        check_options(parse_spec("lwf-ssl"), {"lwf-ssl": {"lambda": "-1"}})
    with pytest.raises(ValueError, match="expected one of: eval, batch"):
        check_options(parse_spec("lwf-ssl"), {"lwf-ssl": {"teacher-bn": "train"}})
    parts = parse_method("simclr+vicreg", {"simclr": {"temperature": "0.2"}})
    assert [(cls.__name__, weight) for cls, _, weight in parts] == [
        ("SimCLR", 1.0),
        ("VICReg", 1.0),
    ]
    assert parts[0][1].temperature == 0.2
    with pytest.raises(ValueError, match="--method-opt vicreg.weight must be >= 0, got -1.0"):
        parse_method("simclr+vicreg", {"vicreg": {"weight": "-1"}})
    with pytest.raises(ValueError, match="target network of the whole model"):
        parse_method("simclr+byol")
