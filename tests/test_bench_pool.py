"""``reprogram bench … --jobs N``: cells in worker processes, and ``bench forecast`` on a user's
own CSV file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from reprogram_bench import ints
from reprogram_bench.forecast import Cell, run_forecast, target_name
from reprogram_bench.pool import Task, check_jobs, run_tasks, worker_threads
from reprogram_bench.vision import run_vision

from reprogram.cli import main
from reprogram.errors import ReprogramError


def test_one_job_runs_in_order_and_calls_before_each() -> None:
    tasks = [Task(i, f"t{i}", ints, (text, "--shots")) for i, text in enumerate(("1", "x", "3"))]
    seen: list[str] = []
    done = list(run_tasks(tasks, 1, before=lambda t: seen.append(t.label)))
    assert seen == ["t0", "t1", "t2"] and [d.index for d in done] == [0, 1, 2]
    assert done[0].error is None and done[2].error is None
    assert isinstance(done[1].error, ReprogramError) and "comma-separated" in str(done[1].error)


def test_workers_return_every_task_and_its_error() -> None:
    tasks = [Task(i, f"t{i}", ints, (text, "--shots")) for i, text in enumerate(("1", "0"))]
    done = sorted(run_tasks(tasks, 2, progress=False), key=lambda d: d.index)
    assert [d.index for d in done] == [0, 1] and done[0].error is None
    assert isinstance(done[1].error, ReprogramError) and "positive" in str(done[1].error)
    assert all(d.seconds >= 0 for d in done)


@pytest.mark.parametrize("jobs", [0, -1, True, 1.5])
def test_jobs_must_be_a_whole_number_of_at_least_one(jobs: object) -> None:
    with pytest.raises(ReprogramError, match="--jobs"):
        check_jobs(jobs)  # type: ignore[arg-type]


def test_worker_threads_share_the_cpus() -> None:
    assert worker_threads(2, cpus=16) == 8 and worker_threads(3, cpus=2) == 1
    assert worker_threads(1, cpus=4) == 4


def test_a_vision_grid_in_two_workers_matches_one_after_another(tmp_path: Path) -> None:
    grid = dict(shots=(10,), seeds=(0,), methods=("pixels-logreg", "scratch"),
                source="tiny-random-cnn", target="digits", epochs=1, canvas_size=32,
                progress=False)
    one = run_vision(tmp_path / "one", **grid)  # type: ignore[arg-type]
    two = run_vision(tmp_path / "two", jobs=2, **grid)  # type: ignore[arg-type]
    # the rows come back in grid order whatever order the workers finish in
    assert [(r["method"], r["seed"]) for r in two] == [(r["method"], r["seed"]) for r in one]
    for a, b in zip(one, two, strict=True):
        assert b["test_accuracy"] == pytest.approx(a["test_accuracy"], abs=0.02)
    table = json.loads((tmp_path / "two" / "results.json").read_text())
    assert len(table["rows"]) == 2


def _series(path: Path, rows: int = 400) -> Path:
    lines = ["timestamp,load"]
    for t in range(rows):
        lines.append(f"{t},{math.sin(2 * math.pi * t / 24) + t / 400:.5f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_forecast_bench_runs_a_users_file_and_lists_cells_it_cannot_form(
    tmp_path: Path,
) -> None:
    csv = _series(tmp_path / "load.csv")
    name = f"{csv}#lookback=48"
    rows = run_forecast(tmp_path / "suite", sets=(name,), horizons=(12, 500),
                        methods=("seasonal-naive", "linear"), seeds=(0,), epochs=1,
                        progress=False)
    assert sorted((r["method"], r["horizon"]) for r in rows) == [
        ("linear", 12), ("seasonal-naive", 12)]
    results = json.loads((tmp_path / "suite" / "results.json").read_text())
    skipped = results["meta"]["settings"]["skipped"]
    assert sorted(s["cell"].split("/")[3] for s in skipped) == ["linear", "seasonal-naive"]
    # an absolute path becomes one folder name under runs/, not a path outside the suite
    runs = [p for p in (tmp_path / "suite" / "runs").iterdir()]
    assert len(runs) == 1 and runs[0].name.endswith("load.csv~lookback=48")
    assert "lookback=48#horizon=12" in target_name(Cell(name, 12, 1.0, "linear", 0), 1, 1)
    assert target_name(Cell("ETTh1", 96, 1.0, "linear", 0), 1, 1) == (
        "forecast:ETTh1#lookback=512#horizon=96")


@pytest.mark.parametrize(("sets", "horizons", "match"), [
    (("ETTH1",), None, "neither a standard set"),
    (("{csv}",), None, "give them with --horizons"),
    (("{dir}",), (12,), "neither a standard set"),
])
def test_forecast_bench_refuses_unknown_sets_before_any_work(
    tmp_path: Path, sets: tuple[str, ...], horizons: tuple[int, ...] | None, match: str
) -> None:
    csv = _series(tmp_path / "load.csv")
    named = tuple(s.format(csv=csv, dir=tmp_path) for s in sets)
    with pytest.raises(ReprogramError, match=match):
        run_forecast(tmp_path / "suite", sets=named, horizons=horizons, methods=("linear",),
                     seeds=(0,), progress=False)
    assert not (tmp_path / "suite").exists()


@pytest.mark.parametrize(("argv", "match"), [
    (["bench", "efficiency", "--jobs", "2"], "one cell at a time"),
    (["bench", "vision", "--jobs", "0"], "at least 1"),
    (["bench", "vision", "--select", "kfold:5"], "--select applies to the ucr-v2s and sequences"),
])
def test_bench_jobs_flag_is_checked(tmp_path: Path, argv: list[str], match: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*argv, "--out", str(tmp_path / "b")])
    assert code == 2 and match in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_users_file_is_read_whole_by_the_language_model_cells_unless_told(
    tmp_path: Path,
) -> None:
    csv = _series(tmp_path / "load.csv")
    argv = ["bench", "forecast", "--tasks", f"{csv}#lookback=48", "--horizons", "12",
            "--methods", "seasonal-naive", "--seeds", "0", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "own")]) == 0
    settings = json.loads((tmp_path / "own" / "results.json").read_text())["meta"]["settings"]
    assert settings["lm_window_strides"] == [1, 1]
    assert main([*argv, "--lm-strides", "4,2", "--out", str(tmp_path / "told")]) == 0
    settings = json.loads((tmp_path / "told" / "results.json").read_text())["meta"]["settings"]
    assert settings["lm_window_strides"] == [4, 2]
