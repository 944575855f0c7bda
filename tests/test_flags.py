"""Command-line flags come from the config dataclasses' fields (one place per fact)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from reprogram.cli import build_parser
from reprogram.config import BaselineConfig, FitConfig
from reprogram.errors import ReprogramError
from reprogram.flags import add_flags, cli_fields, from_flags, key_values


def _sub(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def test_every_field_of_fit_is_a_flag_or_says_why_not() -> None:
    options = {s for a in _sub("fit")._actions for s in a.option_strings}
    for f in dataclasses.fields(FitConfig):
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        if f.metadata.get("cli", True) is False:
            assert flag not in options, f.name
        else:
            assert flag in options, f"{f.name}: no {flag} on reprogram fit"
            assert f.metadata.get("help"), f"{f.name} has no help text"


def test_defaults_parse_to_the_dataclass_defaults() -> None:
    args = build_parser().parse_args(["fit"])
    assert FitConfig(**from_flags(FitConfig, args)) == FitConfig()
    args = build_parser().parse_args(["baseline", "--method", "finetune"])
    skip = ("optimizer", "optimizer_options", "query_budget", "plots")
    got = BaselineConfig(**from_flags(BaselineConfig, args, skip=skip))
    assert got == BaselineConfig(method="finetune", out="runs/baseline")


def test_flags_fill_every_kind_of_field() -> None:
    args = build_parser().parse_args(
        [
            "fit",
            "--shots",
            "5",
            "--lr",
            "0.5",
            "--quiet",
            "--no-plots",
            "--mapping-opt",
            "init=probe",
            "--mapping-opt",
            "head-x=1",
            "--select",
            "refit",
        ]
    )
    kw = from_flags(FitConfig, args)
    assert kw["shots"] == 5 and kw["lr"] == 0.5 and kw["select"] == "refit"
    assert kw["progress"] is False and kw["plots"] is False and kw["diagnostics"] is True
    assert kw["mapping_options"] == {"init": "probe", "head_x": "1"}


def test_a_dataclass_of_ones_own_gets_its_flags() -> None:
    @dataclasses.dataclass
    class Mine:
        width: int = dataclasses.field(default=3, metadata={"help": "how wide"})
        name: str | None = None
        fast: bool = dataclasses.field(default=True, metadata={"flag": "--slow", "invert": True})
        hidden: float = dataclasses.field(default=1.0, metadata={"cli": False})

    parser = argparse.ArgumentParser()
    add_flags(parser, Mine)
    assert [f.name for f in cli_fields(Mine)] == ["width", "name", "fast"]
    assert from_flags(Mine, parser.parse_args(["--width", "7", "--slow"])) == {
        "width": 7,
        "name": None,
        "fast": False,
    }


def test_bad_key_values_are_named() -> None:
    with pytest.raises(ReprogramError, match="--program-opt takes KEY=VALUE"):
        key_values(["novalue"], "--program-opt")


def test_a_setting_of_the_wrong_type_is_refused_by_name() -> None:
    import numpy as np
    import pytest

    from reprogram.errors import ReprogramError

    for given, message in ((dict(shots="4"), "shots must be a whole number or None"),
                           (dict(seed="0"), r"seed must be a whole number, got '0' \(str\)"),
                           (dict(program_options=None), "program_options must be a dict")):
        with pytest.raises(ReprogramError, match=message):
            FitConfig(**given)  # type: ignore[arg-type]
    config = FitConfig(shots=np.int64(4))  # type: ignore[arg-type]
    assert type(config.shots) is int
