"""The efficiency benchmark's outputs (behaviour only: no timing thresholds)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from reprogram_bench.efficiency import CSV_FIELDS, run_efficiency

PROGRAMS = ("border", "resize-pad", "full")
MAPPINGS = ("random", "linear")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("eff")
    res = run_efficiency(
        out,
        source="tiny-random-cnn",
        sizes=(32,),
        batch_size=8,
        warmup=1,
        repeats=2,
        programs=PROGRAMS,
        mappings=MAPPINGS,
        progress=False,
        command="pytest",
    )
    return out, res


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
