"""``reprogram bench vision`` on a tiny source and task: files, table, and resumability."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from reprogram_bench.vision import run_vision

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

    # a killed suite: the last cell never finished (no metrics, not in the table); the rerun
    # runs that cell only
    runs = tmp_path / "runs"
    kept = runs / "scratch" / "shots10" / "seed0" / "metrics.json"
    lost = runs / "pixels-logreg" / "shots10" / "seed1" / "metrics.json"
    before = kept.stat().st_mtime_ns
    lost_before = json.loads(lost.read_text())
    lost.unlink()
    results = json.loads((tmp_path / "results.json").read_text())
    results["rows"] = [
        r for r in results["rows"] if (r["method"], r["seed"]) != ("pixels-logreg", 1)
    ]
    (tmp_path / "results.json").write_text(json.dumps(results))
    again = suite(tmp_path)
    assert kept.stat().st_mtime_ns == before
    assert lost.exists()
    assert json.loads(lost.read_text())["test_accuracy"] == lost_before["test_accuracy"]
    assert [r["test_accuracy"] for r in again] == [r["test_accuracy"] for r in rows]

    # a clean clone has results.json but no runs/: nothing is rerun, the table stays whole
    shutil.rmtree(runs)
    table_before = (tmp_path / "results.md").read_text().split("Machine:")[0]
    clone = suite(tmp_path)
    assert not runs.exists()
    assert [r["test_accuracy"] for r in clone] == [r["test_accuracy"] for r in rows]
    assert (tmp_path / "results.md").read_text().split("Machine:")[0] == table_before


def test_unknown_method_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ReprogramError, match="unknown baseline"):
        suite(tmp_path, methods=("resize-pad+linear", "svm-magic"))
    assert not (tmp_path / "runs").exists()


def test_split_methods_keeps_each_methods_options() -> None:
    from reprogram_bench import split_methods

    assert split_methods("full+linear:init=probe,lr=0.001,linear-probe, scratch") == (
        "full+linear:init=probe,lr=0.001",
        "linear-probe",
        "scratch",
    )
    assert split_methods("full+linear,resize-pad+ilm") == ("full+linear", "resize-pad+ilm")
    assert split_methods(
        "full+linear:init=probe,lr=0.001@features:efficientnet-lite0,linear-probe"
    ) == ("full+linear:init=probe,lr=0.001@features:efficientnet-lite0", "linear-probe")


def test_split_source() -> None:
    from reprogram_bench.vision import split_source

    assert split_source("full+linear", "a") == ("full+linear", "a")
    assert split_source("full+linear:lr=1@features:b", "a") == ("full+linear:lr=1", "features:b")
    assert split_source("full+linear@features:", "a") == ("full+linear", "features:a")


def test_a_cell_may_run_on_its_own_source(tmp_path: Path) -> None:
    method = "full+linear:init=probe@features:tiny-random-cnn"
    rows = suite(tmp_path, methods=(method,), seeds=(0,))
    assert rows[0]["method"] == method
    config = json.loads(
        (tmp_path / "runs" / method / "shots10" / "seed0" / "config.json").read_text()
    )
    assert config["source"]["name"] == "features:tiny-random-cnn"
    assert rows[0]["trainable_parameters"] == 3 * 32 * 32 + 16 * 10 + 10


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("linear-probe@features:tiny-random-cnn", "baselines take no @SOURCE"),
        ("full+linear@nosuchsource", "unknown source"),
    ],
)
def test_bad_cell_sources_fail_before_any_work(tmp_path: Path, method: str, message: str) -> None:
    with pytest.raises(ReprogramError, match=message):
        suite(tmp_path, methods=(method,))
    assert not (tmp_path / "runs").exists()


def test_a_suite_directory_accumulates_cells_from_several_calls(tmp_path: Path) -> None:
    suite(tmp_path, methods=("pixels-logreg", "scratch"), seeds=(0,), command="first")
    suite(tmp_path, methods=("pixels-logreg",), shots=(20,), seeds=(0,), command="second")
    result = json.loads((tmp_path / "results.json").read_text())
    assert {(r["method"], r["shots"]) for r in result["rows"]} == {
        ("pixels-logreg", 10),
        ("scratch", 10),
        ("pixels-logreg", 20),
    }
    assert result["meta"]["commands"] == ["first", "second"]
    assert result["meta"]["settings"]["shots"] == [10, 20]
    table = (tmp_path / "results.md").read_text()
    assert "- `first`" in table and "- `second`" in table
    assert "| scratch | " in table and "20 shots" in table
    with pytest.raises(ReprogramError, match=r"epochs=1.*use another --out"):
        suite(tmp_path, methods=("scratch",), epochs=2)


def test_a_method_may_select_by_kfold(tmp_path: Path) -> None:
    methods = ("resize-pad+linear:select=kfold:3", "pixels-logreg:select=kfold:3,max_iter=300")
    rows = suite(tmp_path, methods=methods, seeds=(0,), shots=(6,))
    assert [r["method"] for r in rows] == list(methods)
    for method in methods:
        m = json.loads(
            (tmp_path / "runs" / method / "shots6" / "seed0" / "metrics.json").read_text()
        )
        assert m["kfold"]["folds"] == 3 and m["splits"]["train"] == 60
        assert (tmp_path / "runs" / method / "shots6" / "seed0" / "folds" / "2").is_dir()
    penalty = json.loads(
        (tmp_path / "runs" / methods[1] / "shots6" / "seed0" / "metrics.json").read_text()
    )["kfold"]["curve"]
    assert [c["C"] for c in penalty] == [0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
    with pytest.raises(ReprogramError, match="--select takes"):
        suite(tmp_path / "bad", methods=("linear-probe:select=kfold:1",))


def test_verdict_names_no_winner_inside_the_spread_over_seeds() -> None:
    from reprogram_bench.vision import verdict

    assert verdict(
        {"test_mean": 0.874, "test_std": 0.001}, {"test_mean": 0.8738, "test_std": 0.001}
    ).startswith("ties")
    assert (
        verdict({"test_mean": 0.739, "test_std": 0.014}, {"test_mean": 0.715, "test_std": 0.009})
        == "wins by 0.024"
    )
    assert (
        verdict({"test_mean": 0.827, "test_std": 0.014}, {"test_mean": 0.852, "test_std": 0.005})
        == "loses by 0.025"
    )


def test_the_recipe_row_is_paired_by_seed_against_probe_lora_and_finetune() -> None:
    from reprogram_bench.vision import RECIPE_ROW, _markdown, paired_rows, summarise

    def row(method: str, seed: int, acc: float) -> dict:
        kind = "reprogramming" if "+" in method else "baseline"
        return {
            "method": method,
            "kind": kind,
            "shots": 10,
            "seed": seed,
            "test_accuracy": acc,
            "val_accuracy": 0.5,
            "trainable_parameters": 1,
            "source_parameters": 10,
            "artifact_bytes": 1,
            "train_seconds": 1.0,
        }

    rows = [row(RECIPE_ROW, s, 0.7 + 0.01 * s) for s in (0, 1, 2)]
    rows += [row("linear-probe", s, 0.69) for s in (0, 1, 2)]
    rows += [row("lora", s, 0.75) for s in (0, 1)]  # seed 2 unfinished: not paired
    paired = paired_rows(rows)
    assert [(p["peer"], p["pairs"], p["better"], p["worse"]) for p in paired] == [
        ("linear-probe", 3, 3, 0),
        ("lora", 2, 0, 2),
    ]
    assert abs(paired[0]["mean"] - 0.02) < 1e-9
    settings = {
        "source": "s",
        "target": "t",
        "seeds": [0, 1, 2],
        "epochs": 1,
        "canvas_size": 8,
        "methods": [RECIPE_ROW, "linear-probe", "lora"],
    }
    meta = {"command": "c", "machine": {}, "date": "d"}
    md = _markdown(summarise(rows), settings, meta, paired)
    assert "| 10 | lora | 2 | -0.045 | 0 | 2 |" in md


def test_differences_to_the_probe_pair_seeds_both_finished() -> None:
    from reprogram_bench.vision import differences_to_probe

    def row(method: str, seed: int, acc: float, shots: int = 10) -> dict[str, object]:
        return {"method": method, "shots": shots, "seed": seed, "test_accuracy": acc}

    rows = [
        row("linear-probe", 0, 0.70), row("linear-probe", 1, 0.80),
        row("lora", 0, 0.75), row("lora", 1, 0.81), row("lora", 2, 0.99),  # seed 2: no probe
        row("full+linear", 0, 0.60, shots=100),  # no probe at 100 shots: no pair
    ]
    (lora,) = differences_to_probe(rows)
    assert (lora["method"], lora["shots"], lora["pairs"]) == ("lora", 10, 2)
    assert lora["mean"] == pytest.approx(0.03)  # (0.05 + 0.01) / 2
    assert lora["std"] == pytest.approx(0.04 / 2**0.5)  # the std of 0.05 and 0.01
