"""The efficiency benchmark's outputs (behaviour only: no timing thresholds)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from reprogram_bench.efficiency import CSV_FIELDS, parse_cell, run_efficiency

from reprogram.errors import ReprogramError

PROGRAMS = ("border", "resize-pad", "full")
MAPPINGS = ("random", "linear")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("eff")
    res = _tiny(out, batch_size=8, warmup=1, repeats=2, programs=PROGRAMS, mappings=MAPPINGS,
                command="pytest")
    return out, res


def _tiny(out: Path, **options: object) -> dict:
    """The suite on the tiny random CNN at 32 px, quietly."""
    return run_efficiency(out, source="tiny-random-cnn", sizes=(32,), progress=False, **options)


def test_writes_every_output(result: tuple[Path, dict]) -> None:
    out, res = result
    for name in ("results.json", "results.csv", "results.md", "efficiency.png"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(res))
    meta = res["meta"]
    assert meta["command"] == "pytest" and meta["source"] == "tiny-random-cnn"
    assert meta["machine"]["cpu_count"] and meta["machine"]["torch_threads"] >= 1
    assert meta["date"]


def test_rows_cover_the_grid_with_positive_finite_ratios(result: tuple[Path, dict]) -> None:
    _, res = result
    rows = res["rows"]
    assert sorted((r["program"], r["mapping"]) for r in rows) == sorted(
        (p, m) for p in PROGRAMS for m in MAPPINGS
    )
    for r in rows:
        assert r["size"] == 32
        for key in ("step_over_floor", "infer_over_bare", "mem_over_floor"):
            assert math.isfinite(r[key]) and r[key] > 0, (key, r)
        for key in ("step_ms", "floor_ms", "infer_ms", "bare_ms", "step_peak_mb", "floor_peak_mb"):
            assert r[key] > 0, (key, r)
        assert len(r["times_ms"]["step"]) == 2
        assert r["meets_step_target"] == (r["step_over_floor"] <= 1.10)
        assert r["meets_infer_target"] == (r["infer_over_bare"] <= 1.05)


def test_csv_and_markdown_have_a_row_per_cell(result: tuple[Path, dict]) -> None:
    out, res = result
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(res["rows"]) and tuple(rows[0]) == CSV_FIELDS
    md = (out / "results.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| 32 |")]
    assert len(table) == len(PROGRAMS) * len(MAPPINGS)
    for p in PROGRAMS:
        for m in MAPPINGS:
            assert any(f"| {p} | {m} |" in line for line in table), (p, m)
    assert "1.10" in md and "1.05" in md


def test_named_methods_carry_options_and_report_the_generator(tmp_path: Path) -> None:
    methods = ("smm+linear:patch=4,width=2", "resize-pad+blm:learn_scale=true")
    res = _tiny(tmp_path, batch_size=4, warmup=0, repeats=1, methods=methods)
    smm, scaled = res["rows"]
    assert (smm["program"], smm["mapping"]) == ("smm:patch=4,width=2", "linear")
    assert 0 < smm["generator_params"] < smm["trainable_params"]
    assert smm["program_ms"] > 0 and len(smm["times_ms"]["program"]) == 1
    assert (scaled["program"], scaled["mapping"]) == ("resize-pad:learn_scale=true", "blm")
    assert scaled["generator_params"] == 0
    md = (tmp_path / "results.md").read_text()
    assert "| 32 | smm:patch=4,width=2 | linear |" in md
    assert f"({smm['generator_params']:,} generator)" in md


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("smm", "PROGRAM\\+MAPPING"),
        ("smm+linear:nope=1", "'nope' belongs to none of"),
        ("smm+linear:lr=0.1", "lr set the optimizer or the run"),
    ],
)
def test_a_malformed_efficiency_method_is_named(method: str, message: str) -> None:
    with pytest.raises(ReprogramError, match=message):
        parse_cell(method, 32)
