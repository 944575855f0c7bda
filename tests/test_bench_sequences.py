"""``reprogram bench sequences`` on a tiny random language model and a toy CSV task."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from reprogram_bench.sequences import (
    CHOSEN,
    _params_text,
    cells_for,
    chosen_by_validation,
    folder_name,
    is_regression,
    paired_auc,
    run_sequences,
    summarise,
    why_not,
)

from reprogram.errors import ReprogramError


def _toy(tmp_path: Path) -> str:
    rows = ["sequence,label"]
    for i in range(40):
        pos = i % 2 == 1
        rows.append(f"{('KRHA' if pos else 'DEW') * (2 + i % 3)},{'pos' if pos else 'neg'}")
    path = tmp_path / "toy.csv"
    path.write_text("\n".join(rows) + "\n")
    return f"csv:{path}"


def test_suite_writes_tables_and_skips_finished_cells(tmp_path: Path) -> None:
    task = _toy(tmp_path)
    methods = ("soft-prompt+linear:init=probe,length=2", "composition-logreg", "length:trees=5")
    kwargs = dict(
        tasks=(task,),
        shots=(4, 0),
        seeds=(0,),
        methods=methods,
        source="tiny-random-lm",
        epochs=1,
        progress=False,
    )
    rows = run_sequences(tmp_path / "suite", **kwargs)  # type: ignore[arg-type]
    assert len(rows) == 6 and all(r["test_roc_auc"] is not None for r in rows)
    out = tmp_path / "suite"
    for name in ("results.json", "results.csv", "results.md", "auc_vs_shots.png"):
        assert (out / name).is_file()
    # composition-logreg is the one default method here: the others get their own figure
    assert (out / "auc_vs_shots_all.png").is_file()
    table = (out / "results.md").read_text()
    assert f"## {task}" in table and "| composition-logreg |" in table
    assert "## Paired" not in table  # the default row is not in this grid: nothing to pair
    assert table.startswith("# Sequences: tiny-random-lm reprogrammed vs peers\n")
    assert "fixed in advance: `soft-prompt+linear:init=probe` (not in this grid)" in table
    stamp = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("metrics.json")}
    again = run_sequences(out, **kwargs)  # type: ignore[arg-type]
    assert [r["test_accuracy"] for r in again] == [r["test_accuracy"] for r in rows]
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp  # nothing was rerun
    # the csv edited since: a rerun would keep the old file's scores, so it is refused
    path = Path(task.removeprefix("csv:"))
    original = path.read_text()
    flipped = original.replace(",pos", ",tmp").replace(",neg", ",pos").replace(",tmp", ",neg")
    path.write_text(flipped)
    with pytest.raises(ReprogramError, match="changed since the finished cells"):
        run_sequences(out, **kwargs)  # type: ignore[arg-type]
    path.write_text(original)
    more = run_sequences(out, **{**kwargs, "seeds": (0, 1)}, report_only=True)  # type: ignore[arg-type]
    assert (
        len(more) == 6
        and not (out / "runs" / folder_name(task) / "length:trees=5" / "shots4" / "seed1").exists()
    )
    assert json.loads((out / "results.json").read_text())["meta"]["settings"]["shots"] == [4, 0]
    # another invocation into the same directory adds its cells to the table, and the runs'
    # folders are not needed for the earlier ones (they are not committed)
    shutil.rmtree(out / "runs")
    added = run_sequences(out, **{**kwargs, "shots": (4, 8), "methods": methods[1:]},  # type: ignore[arg-type]
                          command="second")
    assert len(added) == 4 and len({r["shots"] for r in added}) == 2
    assert not (out / "runs" / folder_name(task) / "length:trees=5" / "shots4").exists()
    record = json.loads((out / "results.json").read_text())
    assert len(record["rows"]) == 8 and record["meta"]["settings"]["shots"] == [4, 0, 8]
    assert record["meta"]["commands"] == ["reprogram bench sequences", "second"]
    assert "- `second`" in (out / "results.md").read_text()
    with pytest.raises(ReprogramError, match="was run with epochs=1"):
        run_sequences(out, **{**kwargs, "epochs": 2})  # type: ignore[arg-type]


def test_a_failed_cell_does_not_stop_the_grid(tmp_path: Path) -> None:
    """100 shots a class cannot be drawn from the toy's 20: those cells fail, the 4-shot cells
    after them still run and are tabled, and the suite then stops with one error naming the
    failed cells; a csv task's folder is one name under runs/, not its path."""
    task = _toy(tmp_path)
    out = tmp_path / "suite"
    with pytest.raises(ReprogramError, match=r"2 bench cell\(s\) failed") as caught:
        run_sequences(out, tasks=(task,), shots=(100, 4), seeds=(0,),
                      methods=("composition-logreg", "length:trees=5"),
                      source="tiny-random-lm", epochs=1, progress=False)
    assert "shots100" in str(caught.value) and "lower --shots" in str(caught.value)
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert (out / "results.md").read_text().startswith("# Sequences: peers, no reprogramming")
    assert sorted((r["method"], r["shots"]) for r in rows) == [
        ("composition-logreg", 4), ("length:trees=5", 4)]
    assert [p.name for p in (out / "runs").iterdir()] == [folder_name(task)]
    assert "/" not in folder_name(task) and folder_name(task).startswith("csv:")
    assert folder_name("amp") == "amp" and folder_name("csv:a/x.csv") != folder_name("csv:b/x.csv")


def test_regression_row_counts_beyond_the_data_fail_before_any_cell(tmp_path: Path) -> None:
    path = tmp_path / "values.csv"
    path.write_text("sequence,label\n" + "".join(f"{'K' * (1 + i)},{i}\n" for i in range(30)))
    with pytest.raises(ReprogramError, match=r"--regression-shots 64 asks for more rows"):
        run_sequences(tmp_path / "suite", tasks=(f"csv:{path}#task=regression",),
                      regression_shots=(16, 64), seeds=(0,), methods=("length:trees=5",),
                      source="tiny-random-lm", epochs=1, progress=False)
    assert not (tmp_path / "suite" / "runs").exists()


def test_paired_auc_counts_tasks_and_seeds() -> None:
    rows = [
        {"method": m, "task": t, "seed": s, "shots": 8, "test_roc_auc": auc}
        for m, t, s, auc in [
            ("a", "x", 0, 0.9),
            ("b", "x", 0, 0.8),
            ("a", "y", 0, 0.6),
            ("b", "y", 0, 0.7),
            ("a", "y", 1, 0.7),  # no partner: not counted
        ]
    ]
    result = paired_auc(rows, "a", "b", 8)
    assert result["pairs"] == 2 and result["wins"] == 1 and result["losses"] == 1
    assert result["mean_diff"] == pytest.approx(0.0)


def test_a_row_whose_size_grows_with_the_data_shows_its_range() -> None:
    def row(method: str, shots: int, seed: int, params: int, frozen: int) -> dict:
        return {"task": "t", "method": method, "kind": "baseline", "shots": shots, "seed": seed,
                "test_accuracy": 0.5, "test_roc_auc": 0.5, "trainable_parameters": params,
                "source_parameters": frozen, "train_seconds": 1.0}

    rows = [row("forest", 8, 0, 31, 0), row("forest", 8, 1, 35, 0), row("forest", 0, 0, 901, 0),
            row("prompt", 8, 0, 50, 1000), row("prompt", 0, 0, 50, 1000)]
    by = {(s["task"], s["method"], s["shots"]): s for s in summarise(rows)}
    # the forest's node count grows with its training rows: the last column's alone misled
    assert _params_text(by, "t", "forest", [8, 0]) == "31–901"
    assert _params_text(by, "t", "forest", [8]) == "31–35"
    assert _params_text(by, "t", "prompt", [8, 0]) == "50 (5.00%)"


def test_molecule_peers_only_run_on_molecules() -> None:
    cells = cells_for(("amp", "b3db"), ("morgan-forest", "length"), (8,), (0,))
    assert {(c.task, c.method) for c in cells} == {
        ("amp", "length"),
        ("b3db", "morgan-forest"),
        ("b3db", "length"),
    }
    # a user's file of SMILES says so, and then its molecule peers run
    mols = cells_for(("csv:m.csv#alphabet=smiles", "csv:p.csv"), ("morgan-forest",), (8,), (0,))
    assert [c.task for c in mols] == ["csv:m.csv#alphabet=smiles"]
    assert "add #alphabet=smiles" in str(why_not("csv:p.csv", "morgan-forest"))


def test_regression_tasks_take_their_own_row_counts_and_no_classifier() -> None:
    methods = ("morgan-forest", "composition-logreg", "length")
    cells = cells_for(("amp", "solubility"), methods, (8, 32), (0,), regression_shots=(64, 256, 0))
    assert {(c.task, c.method, c.shots) for c in cells} == {
        ("amp", "composition-logreg", 8), ("amp", "length", 8),
        ("amp", "composition-logreg", 32), ("amp", "length", 32),
        ("solubility", "morgan-forest", 64), ("solubility", "length", 64),
        ("solubility", "morgan-forest", 256), ("solubility", "length", 256),
        ("solubility", "morgan-forest", 0), ("solubility", "length", 0),
    }
    assert [c.shots for c in cells if c.task == "solubility"] == [64, 64, 256, 256, 0, 0]


def test_bad_method_fails_before_any_cell(tmp_path: Path) -> None:
    with pytest.raises(ReprogramError):
        run_sequences(tmp_path, tasks=("amp",), methods=("no-such-peer",), progress=False)
    assert not (tmp_path / "runs").exists()


def test_regression_tasks_report_rmse(tmp_path: Path) -> None:
    path = tmp_path / "values.csv"
    rows = ["sequence,label"] + [
        f"{'K' * (1 + i % 7)}{'D' * (i % 3 + 1)},{i % 7 * 0.5}" for i in range(40)
    ]
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "suite"
    default = "soft-prompt+linear:init=probe"
    rows_out = run_sequences(
        out,
        tasks=(f"csv:{path}#task=regression",),
        shots=(8,),
        regression_shots=(16, 0),
        seeds=(0,),
        methods=(default, "composition-forest:trees=5", "composition-logreg"),
        source="tiny-random-lm",
        epochs=1,
        progress=False,
    )
    assert len(rows_out) == 4  # two row counts × (the default row, the forest); no classifier
    assert all(r["test_rmse"] is not None and r["test_roc_auc"] is None for r in rows_out)
    table = (out / "results.md").read_text()
    assert "| method | 16 rows RMSE | R² | all RMSE | R² |" in table
    assert "| composition-forest:trees=5 |" in table and "| composition-logreg" not in table
    assert "Not run, as they do not apply: `composition-logreg` on " in table
    paired = table.split("## Paired")[1]
    assert "test RMSE" in paired and "| 16 | composition-forest:trees=5 | 1 |" in paired
    assert (out / "auc_vs_shots.png").is_file()


def test_paired_rmse_wins_are_lower_errors() -> None:
    rows = [
        {"method": m, "task": "t", "seed": s, "shots": 0, "test_rmse": v}
        for m, s, v in [("a", 0, 1.0), ("b", 0, 1.2), ("a", 1, 1.1), ("b", 1, 1.0)]
    ]
    result = paired_auc(rows, "a", "b", 0, "test_rmse")
    assert (result["wins"], result["losses"]) == (1, 1)
    assert result["mean_diff"] == pytest.approx(-0.05)


def test_a_method_may_train_through_queries(tmp_path: Path) -> None:
    task = _toy(tmp_path)
    method = "soft-prompt+linear:optimizer=spsa-gc,length=2,lr=0.05"
    rows = run_sequences(tmp_path / "suite", tasks=(task,), shots=(4,), seeds=(0,),
                         methods=(method,), source="tiny-random-lm", epochs=1, progress=False)
    config = json.loads(
        next((tmp_path / "suite" / "runs").rglob("config.json")).read_text()
    )
    assert rows[0]["test_roc_auc"] is not None
    assert config["source"]["name"] == "query:tiny-random-lm"
    assert config["optimizer"] == {"name": "spsa-gc", "options": {"lr": "0.05"}}
    with pytest.raises(ReprogramError, match="unknown optimizer 'sgdd'"):
        run_sequences(tmp_path / "bad", tasks=(task,), shots=(4,), seeds=(0,),
                      methods=("soft-prompt+linear:optimizer=sgdd",), source="tiny-random-lm",
                      epochs=1, progress=False)
    with pytest.raises(ReprogramError, match="optimizer= applies to PROGRAM"):
        run_sequences(tmp_path / "bad2", tasks=(task,), shots=(4,), seeds=(0,),
                      methods=("length:optimizer=rgf",), source="tiny-random-lm",
                      epochs=1, progress=False)


def test_the_task_kind_comes_from_the_registry() -> None:
    assert is_regression("solubility") and is_regression("forecast:ILI")
    assert is_regression("csv:x.csv#task=regression")
    assert not is_regression("amp") and not is_regression("csv:x.csv")
    assert not is_regression("no-such-target")  # fails clearly later, when its cell loads it


def test_verbalizer_words_pass_through_a_method_name_and_its_table_row(tmp_path: Path) -> None:
    """``words=D|K`` survives the comma-separated method options, reaches the verbalizer, and
    its ``|`` is escaped in the Markdown table instead of splitting the row."""
    method = "text+verbalizer:epochs=0,words=D|K"
    rows = run_sequences(
        tmp_path / "suite",
        tasks=(_toy(tmp_path),),
        shots=(4,),
        seeds=(0,),
        methods=(method,),
        source="tiny-random-causal-lm",
        epochs=1,
        progress=False,
    )
    assert len(rows) == 1 and rows[0]["test_roc_auc"] is not None
    config = next((tmp_path / "suite" / "runs").rglob("config.json")).read_text()
    assert '"words": "D|K"' in config
    row = next(
        line for line in (tmp_path / "suite" / "results.md").read_text().splitlines()
        if line.startswith("| text+verbalizer")
    )
    assert row.startswith("| text+verbalizer:epochs=0,words=D\\|K |")
    assert len(row.replace("\\|", "").split("|")) == len("| m | auc | acc | params |".split("|"))


def test_suite_select_applies_to_every_row_and_is_kept(tmp_path: Path) -> None:
    """``select="kfold:2"``: the program and the forest both train on every shot (the forest
    with no folds), the table says how cells chose, and the directory refuses holdout."""
    task = _toy(tmp_path)
    kwargs = dict(
        tasks=(task,),
        shots=(6,),
        seeds=(0,),
        methods=("soft-prompt+linear:init=probe,length=2", "composition-forest:trees=5"),
        source="tiny-random-lm",
        epochs=1,
        progress=False,
    )
    out = tmp_path / "suite"
    rows = run_sequences(out, **kwargs, select="kfold:2")  # type: ignore[arg-type]
    assert len(rows) == 2
    for method in kwargs["methods"]:  # type: ignore[union-attr]
        m = json.loads((out / "runs" / folder_name(task) / method / "shots6" / "seed0"
                        / "metrics.json").read_text())
        assert m["splits"]["train"] == 12 and m["kfold"]["select"] == "kfold:2"
    program = out / "runs" / folder_name(task) / kwargs["methods"][0] / "shots6" / "seed0"  # type: ignore[index]
    assert len(list((program / "folds").glob("*/metrics.json"))) == 2
    assert "2-fold cross-validation on the shots selects" in (out / "results.md").read_text()
    with pytest.raises(ReprogramError, match="was run with select='kfold:2'"):
        run_sequences(out, **kwargs)  # type: ignore[arg-type]


def test_a_suite_from_before_select_reads_as_holdout(tmp_path: Path) -> None:
    """A results.json without ``select`` in its settings was run under holdout: a holdout
    call adds to it, a k-fold call is refused."""
    task = _toy(tmp_path)
    kwargs = dict(tasks=(task,), shots=(4,), seeds=(0,), methods=("length:trees=5",),
                  source="tiny-random-lm", epochs=1, progress=False)
    out = tmp_path / "suite"
    run_sequences(out, **kwargs)  # type: ignore[arg-type]
    record = json.loads((out / "results.json").read_text())
    del record["meta"]["settings"]["select"]
    (out / "results.json").write_text(json.dumps(record))
    assert len(run_sequences(out, **kwargs, report_only=True)) == 1  # type: ignore[arg-type]
    with pytest.raises(ReprogramError, match="was run with select='holdout'"):
        run_sequences(out, **kwargs, select="refit")  # type: ignore[arg-type]


def test_validation_chooses_the_reprogramming_row_without_reading_test() -> None:
    def row(method: str, seed: int, val: float | None, test: float) -> dict[str, object]:
        return {"task": "t", "method": method, "kind": "reprogramming", "shots": 8,
                "seed": seed, "val_accuracy": val, "test_roc_auc": test, "test_rmse": None}

    a, b, probe = "soft-prompt+linear", "dictionary+linear", "text+linear:epochs=0"
    rows = [
        row(a, 0, 0.75, 0.60), row(b, 0, 0.80, 0.50), row(probe, 0, None, 0.99),  # b: best val
        row(a, 1, 0.70, 0.70), row(b, 1, 0.70, 0.90), row(probe, 1, None, 0.99),  # tie: a
        row(a, 2, 0.90, 0.80), row(probe, 2, None, 0.99),  # b did not finish seed 2: skipped
        {**row("length", 0, 0.99, 0.55), "kind": "peer"},  # a peer is never chosen
    ]
    chosen = {c["seed"]: c for c in chosen_by_validation(rows, [a, b, probe])}
    assert set(chosen) == {0, 1}
    assert chosen[0]["chosen"] == b and chosen[0]["test_roc_auc"] == 0.50
    assert chosen[1]["chosen"] == a and chosen[1]["method"] == CHOSEN
    regression = [{**row(a, 0, None, 0.0), "test_roc_auc": None, "test_rmse": 1.0, "val_rmse": 0.9},
                  {**row(b, 0, None, 0.0), "test_roc_auc": None, "test_rmse": 2.0, "val_rmse": 0.8}]
    assert chosen_by_validation(regression, [a, b])[0]["chosen"] == b  # the lower val RMSE


def test_a_mean_over_fewer_seeds_than_the_suite_names_its_n() -> None:
    from reprogram_bench.sequences import _spread

    assert _spread(0.794, 0.009, 2, 3) == "0.794 ± 0.009 (n=2)"  # one seed not run yet
    assert _spread(0.794, 0.009, 3, 3) == "0.794 ± 0.009"
    assert _spread(0.801, 0.0, 1, 3) == "0.801 (n=1)"


def test_an_edit_to_training_rows_only_is_caught_and_a_zero_auc_is_kept(tmp_path: Path) -> None:
    """Finished cells of a csv whose training rows (not its test rows) changed are not kept
    beside new ones; a peer that ranks every test row backwards scores ROC-AUC 0.0, which is
    a score, not a missing one."""
    def write(flip: bool) -> str:
        rows = ["sequence,label,split"]
        for i in range(24):
            pos = i % 2 == 1
            split = "test" if i < 8 else "train"
            label = pos != (flip and split == "train")
            rows.append(f"{('KRHA' if pos else 'DEW') * (2 + i % 3)}{'G' * (i % 5)},"
                        f"{'pos' if label else 'neg'},{split}")
        path = tmp_path / "split.csv"
        path.write_text("\n".join(rows) + "\n")
        return f"csv:{path}"

    kwargs = dict(shots=(0,), seeds=(0,), methods=("composition-forest:trees=5",),
                  source="tiny-random-lm", epochs=1, progress=False)
    out = tmp_path / "suite"
    task = write(flip=True)  # training labels the reverse of the test's
    rows = run_sequences(out, tasks=(task,), **kwargs)  # type: ignore[arg-type]
    assert rows[0]["test_roc_auc"] == 0.0
    assert "0.000 (n=1)" in (out / "results.md").read_text()
    write(flip=False)  # only the training rows change
    with pytest.raises(ReprogramError, match="changed since the finished cells"):
        run_sequences(out, tasks=(task,), **kwargs)  # type: ignore[arg-type]


def test_eval_on_a_suite_or_task_folder_points_at_the_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reprogram.cli import main

    task = _toy(tmp_path)
    out = tmp_path / "suite"
    run_sequences(out, tasks=(task,), shots=(4,), seeds=(0,), methods=("length:trees=5",),
                  source="tiny-random-lm", epochs=1, progress=False)
    assert main(["eval", str(out)]) == 2
    assert "bench suite's folder: each cell's run is a folder under" in capsys.readouterr().err
    assert main(["eval", str(out / "runs" / folder_name(task))]) == 2
    assert "A run lies below it, e.g. " in capsys.readouterr().err
