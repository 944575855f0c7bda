"""``reprogram bench ucr-v2s`` on two tiny cells: tables, plot, published numbers, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reprogram_bench.published import gap_markdown, gap_shares
from reprogram_bench.ucr import PUBLISHED, V2S_SETS, Cell, Clock, parse, run_ucr, shots_for

from reprogram.cli import main
from reprogram.errors import ReprogramError

METHODS = ("series-image+linear:canvas_size=32@tiny-random-cnn", "minirocket:n_kernels=84")


def suite(out: Path, **kw: object) -> list[dict[str, object]]:
    args = dict(sets=("GunPoint",), seeds=(0,), methods=METHODS, epochs=1, max_train=10)
    args.update(progress=False, **kw)
    return run_ucr(out, **args)  # type: ignore[arg-type]


def test_two_cells_write_tables_and_plot_then_rerun_only_what_is_missing(tmp_path: Path) -> None:
    rows = suite(tmp_path)
    assert [(r["method"], r["dataset"], r["seed"]) for r in rows] == [
        (m, "GunPoint", 0) for m in METHODS
    ]
    assert all(r["shots"] == 5 and r["train"] + r["val"] == 10 for r in rows)
    assert rows[0]["kind"] == "reprogramming" and rows[0]["source"] == "tiny-random-cnn"
    for name in ("results.json", "results.csv", "results.md", "accuracy_per_set.png", "paired.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    table = (tmp_path / "results.md").read_text()
    assert "| GunPoint |" in table and "96.67" in table and "mean over sets" in table
    assert "Voice2Series" in table and "InceptionTime 84.68" in table
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["meta"]["published"]["v2s"]["GunPoint"] == {"sota": 100.0, "v2sa": 96.67}
    assert set(saved["means_over_sets"]) == set(METHODS)
    (pair,) = saved["paired"]  # the reprogramming method against the peer, same run
    assert (pair["method"], pair["against"], pair["sets"]) == (*METHODS, ["GunPoint"])
    diff = 100 * (rows[0]["test_accuracy"] - rows[1]["test_accuracy"])
    assert pair["mean_diff"] == pytest.approx(diff) and pair["wilcoxon_p"] is None
    assert "| minirocket:n_kernels=84 | 1 |" in table

    runs = tmp_path / "runs"
    kept = runs / METHODS[0] / "GunPoint" / "seed0" / "metrics.json"
    lost = runs / METHODS[1] / "GunPoint" / "seed0" / "metrics.json"
    before, lost_before = kept.stat().st_mtime_ns, json.loads(lost.read_text())
    lost.unlink()
    again = suite(tmp_path)
    assert kept.stat().st_mtime_ns == before  # finished cell not rerun
    assert json.loads(lost.read_text())["test_accuracy"] == lost_before["test_accuracy"]
    assert [r["test_accuracy"] for r in again] == [r["test_accuracy"] for r in rows]


def test_bad_methods_and_sets_fail_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ReprogramError, match="unknown baseline"):
        suite(tmp_path, methods=("minirocket", "svm-magic"))
    with pytest.raises(ReprogramError, match="not a univariate set"):
        suite(tmp_path, sets=("GunPont",))
    with pytest.raises(ReprogramError, match="no @SOURCE"):
        parse("minirocket@whisper-tiny.en", "x")
    assert not (tmp_path / "runs").exists()


def test_method_parsing_and_training_caps() -> None:
    m = parse("waveform+random:lr=0.01@whisper-tiny.en", "efficientnet-lite0")
    assert (m.kind, m.name, m.source) == ("reprogramming", "waveform+random", "whisper-tiny.en")
    assert m.options["optimizer"] == {"lr": "0.01"} and m.gradient
    assert parse("full+linear", "efficientnet-lite0").source == "efficientnet-lite0"
    assert not parse("minirocket", "x").gradient
    assert shots_for([30, 20], None) is None and shots_for([30, 20], 100) is None
    assert shots_for([30, 20], 30) == 15 and shots_for([300, 4], 100) == 4
    assert len(V2S_SETS) == 20 and set(V2S_SETS) == set(PUBLISHED)
    v2sa = sum(v[1] for v in PUBLISHED.values()) / 20
    sota = sum(v[0] for v in PUBLISHED.values()) / 20
    assert round(v2sa, 2) == 87.68 and round(sota, 2) == 86.18  # ASSETS.md's means


def test_cli_bench_ucr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "ucr-v2s", "--out", str(tmp_path), "--sets", "GunPoint", "--seeds", "0"]
    argv += ["--methods", "minirocket:n_kernels=84", "--max-train", "10", "--quiet"]
    assert main(argv) == 0
    assert "minirocket:n_kernels=84" in capsys.readouterr().out
    md = (tmp_path / "results.md").read_text()
    assert "| GunPoint |" in md and "Gap to V2Sa's mean" in md


def test_gap_shares_split_the_gap_to_a_published_column_by_set() -> None:
    summary = [
        {"method": "a", "dataset": "FordB", "test_mean": 0.80},  # V2Sa 100, SOTA 92.86
        {"method": "a", "dataset": "Herring", "test_mean": 0.75},  # V2Sa 68.75
        {"method": "a", "dataset": "NotInV2S", "test_mean": 0.10},  # no published number
        {"method": "b", "dataset": "Coffee", "test_mean": 1.0},
    ]
    gap = gap_shares(summary, "a")
    assert gap is not None and gap["sets"] == 2
    assert [d for d, _ in gap["shares"]] == ["FordB", "Herring"]  # largest share first
    assert gap["shares"][0][1] == pytest.approx((100 - 80) / 2)
    assert gap["shares"][1][1] == pytest.approx((68.75 - 75) / 2)
    assert gap["gap"] == pytest.approx((100 + 68.75) / 2 - (80 + 75) / 2)
    sota = gap_shares(summary, "a", column="SOTA")
    assert sota is not None and sota["gap"] == pytest.approx((92.86 + 68.75 - 155) / 2)
    assert gap_shares(summary, "missing") is None
    assert gap_shares(summary, "b")["gap"] == pytest.approx(0.0)  # type: ignore[index]
    with pytest.raises(ValueError, match="V2Sa"):
        gap_shares(summary, "a", column="V2S")
    lines = gap_markdown(summary, ["a", "missing"])
    assert any(line.startswith("| a | 2 | +6.88 | FordB +10.00, Herring -3.12") for line in lines)
    assert not any(line.startswith("| missing") for line in lines)


def test_a_method_may_name_its_own_epochs(tmp_path: Path) -> None:
    m = parse("scratch:epochs=3,width=4", "x")
    assert m.options["run"] == {"epochs": 3} and m.options["method"] == {"width": "4"}
    assert m.epochs(20) == 3 and parse("scratch", "x").epochs(20) == 20
    rows = suite(tmp_path, methods=("scratch:epochs=2,width=4", "scratch:width=4"))
    assert [r["epochs"] for r in rows] == [2, 1]  # the suite's --epochs 1 for the second
    assert parse("full+linear:head=ridge,epochs=0", "x").epochs(20) == 0  # the fitted start
    with pytest.raises(ReprogramError, match="epochs must be a whole number"):
        parse("scratch:epochs=-1", "x")
    with pytest.raises(ReprogramError, match="epochs must be a whole number"):
        parse("full+linear:epochs=ten", "x")


def test_run_cell_hands_callbacks_to_fit_and_watching_changes_nothing(tmp_path: Path) -> None:
    """A callback that scores the test split after each epoch (as benchmarks/epoch_oracle.py
    does) sees every epoch, lands in metrics.json, and leaves the cell's result unchanged."""
    from reprogram_bench.ucr import Cell, run_cell

    from reprogram.callbacks import Callback

    class Watch(Callback):
        name = "watch"

        def __init__(self) -> None:
            self.test: dict[str, float] = {}

        def on_epoch_end(self, trainer, epoch, record) -> None:  # type: ignore[no-untyped-def]
            trainer.splits.test.unseal()
            test = trainer.evaluate(trainer.splits.test.open(), sharded=False)
            self.test[str(epoch)] = test["accuracy"]

        def state_dict(self) -> dict[str, object]:
            return {"test": dict(self.test)}

    cell = Cell(
        parse("series-image+linear:canvas_size=32,lr=0.05@tiny-random-cnn", "x"), "GunPoint", 0
    )
    run_cell(cell, tmp_path / "plain", epochs=3, shots=5)
    run_cell(cell, tmp_path / "watched", epochs=3, shots=5, callbacks=[Watch()])
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    watched = json.loads((tmp_path / "watched" / "metrics.json").read_text())
    seen = watched["callbacks"]["watch"]["test"]
    assert sorted(seen) == ["1", "2", "3"]
    assert seen[str(watched["best_epoch"])] == watched["test_accuracy"]
    assert watched["test_accuracy"] == plain["test_accuracy"]
    assert [h["val_loss"] for h in watched["history"]] == [h["val_loss"] for h in plain["history"]]


def test_own_sets_run_beside_archive_sets(tmp_path: Path) -> None:
    """``--sets`` takes ``ucr:PATH`` folders too: named by their files, no published column."""
    own = tmp_path / "data" / "Beeps"
    own.mkdir(parents=True)
    for split, n in (("TRAIN", 12), ("TEST", 8)):
        rows = [f"{'up' if i % 2 else 'down'}\t" + "\t".join(
            str(round((1 if i % 2 else -1) * t / 10 + (i % 3) / 10, 3)) for t in range(20)
        ) for i in range(n)]  # fmt: skip
        (own / f"Beeps_{split}.tsv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "bench"
    rows = suite(out, sets=(str(own), "GunPoint"), methods=(METHODS[1],))
    assert [r["dataset"] for r in rows] == ["Beeps", "GunPoint"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["meta"]["settings"]["local_files"] == {
        "Beeps": f"ucr:{(own / 'Beeps_TRAIN.tsv').resolve()}"
    }
    table = (out / "results.md").read_text()
    assert "| Beeps |" in table and "Your own sets (`ucr:PATH`): Beeps (" in table
    with pytest.raises(ReprogramError, match="names 'Beeps' twice"):
        suite(tmp_path / "b2", sets=(str(own), str(own / "Beeps_TRAIN.tsv")))


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_clock_learns_how_cost_grows_with_series_length(beta: float) -> None:
    """Cells costing units × L**beta: after two lengths the estimate is exact; before, the
    prior (0.5) errs by at most √(L ratio)."""
    cell = Cell(parse("waveform+random@whisper-tiny.en", "x"), "A", 0)
    clock = Clock(epochs=10)
    assert clock.estimate(cell, 100, 500) is None
    cost = 0.001
    clock.record(cell, 1000, 2700, cost * 1000 * 10 * 2700**beta)
    first = clock.estimate(cell, 3600, 500)
    truth = cost * 3600 * 10 * 500**beta
    assert first is not None and 1 / (2700 / 500) ** 0.5 <= first / truth <= (2700 / 500) ** 0.5
    clock.record(cell, 200, 150, cost * 200 * 10 * 150**beta)
    assert clock.beta(cell.method.text) == pytest.approx(beta)
    assert clock.estimate(cell, 3600, 500) == pytest.approx(truth)
    peer = Cell(parse("minirocket", "x"), "A", 0)  # fixed features: one pass, no epochs
    assert clock.units(peer, 100) == 100 and clock.estimate(peer, 100, 500) is None
