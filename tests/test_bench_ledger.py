"""A suite directory's table accumulates over invocations (``reprogram_bench.ledger``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reprogram_bench.forecast import Cell, _key
from reprogram_bench.ledger import command_lines, open_ledger

from reprogram.errors import ReprogramError


def _row(horizon: int, seed: int, mse: float) -> dict:
    return {"dataset": "ETTh1", "horizon": horizon, "fraction": 1.0, "method": "linear",
            "seed": seed, "test_mse": mse}


def test_rows_settings_and_commands_accumulate(tmp_path: Path) -> None:
    first = open_ledger(tmp_path, {"horizons": [96], "epochs": 10}, "one", _key, ("epochs",))
    assert first.rows([_row(96, 0, 0.4)]) == [_row(96, 0, 0.4)]
    (tmp_path / "results.json").write_text(json.dumps({
        "meta": {**first.meta(), "settings": first.settings},
        "rows": first.rows([_row(96, 0, 0.4), _row(96, 1, 0.5)]),
    }))
    second = open_ledger(tmp_path, {"horizons": [192, 96], "epochs": 10}, "two", _key,
                         ("epochs",))
    assert second.settings == {"horizons": [96, 192], "epochs": 10}
    rows = second.rows([_row(192, 0, 0.45), _row(96, 1, 0.49)])  # a rerun replaces its cell
    assert [(r["horizon"], r["seed"], r["test_mse"]) for r in rows] == [
        (96, 0, 0.4), (96, 1, 0.49), (192, 0, 0.45)
    ]
    assert second.meta() == {"command": "two", "commands": ["one", "two"]}
    assert command_lines(second.meta())[2:4] == ["- `one`", "- `two`"]
    assert _key(_row(96, 0, 0.4)) == Cell("ETTh1", 96, 1.0, "linear", 0).key
    with pytest.raises(ReprogramError, match="was run with epochs=10"):
        open_ledger(tmp_path, {"epochs": 3}, "three", _key, ("epochs",))


def test_an_unreadable_record_is_named(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ReprogramError, match="move it away"):
        open_ledger(tmp_path, {}, "x", _key, ())
