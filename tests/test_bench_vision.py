"""``reprogram bench vision`` on a tiny source and task: files, table, and resumability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprogram.bench.vision import run_vision
from reprogram.errors import ReprogramError

METHODS = ("resize-pad+linear", "pixels-logreg", "scratch")


def suite(out: Path, **kw: object) -> list[dict[str, object]]:
    args = dict(
        shots=(10,),
        seeds=(0, 1),
        methods=METHODS,
        source="tiny-random-cnn",
        target="digits",
        epochs=1,
        canvas_size=32,
        progress=False,
    )
    args.update(kw)
    return run_vision(out, **args)  # type: ignore[arg-type]


def test_suite_writes_tables_and_plots_and_reruns_only_missing_cells(tmp_path: Path) -> None:
    rows = suite(tmp_path)
    assert {(r["method"], r["seed"]) for r in rows} == {(m, s) for m in METHODS for s in (0, 1)}
    for name in ("results.json", "results.csv", "results.md", "accuracy_vs_shots.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "accuracy_vs_params.png").exists()
    table = (tmp_path / "results.md").read_text()
    for method in METHODS:
        assert f"| {method} |" in table
    summary = json.loads((tmp_path / "results.json").read_text())["summary"]
    assert len(summary) == len(METHODS) and all(len(s["seeds"]) == 2 for s in summary)

    # a killed suite: one cell lost its metrics; the rerun redoes that cell only
    runs = tmp_path / "runs"
    kept = runs / "scratch" / "shots10" / "seed0" / "metrics.json"
    lost = runs / "pixels-logreg" / "shots10" / "seed1" / "metrics.json"
    before = kept.stat().st_mtime_ns
    lost_before = json.loads(lost.read_text())
    lost.unlink()
    again = suite(tmp_path)
    assert kept.stat().st_mtime_ns == before
    assert lost.exists()
    assert json.loads(lost.read_text())["test_accuracy"] == lost_before["test_accuracy"]
    assert [r["test_accuracy"] for r in again] == [r["test_accuracy"] for r in rows]


def test_unknown_method_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ReprogramError, match="unknown baseline"):
        suite(tmp_path, methods=("resize-pad+linear", "svm-magic"))
    assert not (tmp_path / "runs").exists()


def test_split_methods_keeps_each_methods_options() -> None:
    from reprogram.bench import split_methods

    assert split_methods("full+linear:init=probe,lr=0.001,linear-probe, scratch") == (
        "full+linear:init=probe,lr=0.001",
        "linear-probe",
        "scratch",
    )
    assert split_methods("full+linear,resize-pad+ilm") == ("full+linear", "resize-pad+ilm")
