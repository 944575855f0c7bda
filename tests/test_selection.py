"""``--select kfold:K`` and ``refit``: folds, the choice, the refit on all shots, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import Crash, tiny_config
from safetensors.torch import load_file

from reprogram import FitConfig, fit, load_artifact
from reprogram.baselines import BaselineConfig, run_baseline
from reprogram.callbacks import Callback
from reprogram.cli import main
from reprogram.data.splits import stratified_folds
from reprogram.errors import DataError, ReprogramError
from reprogram.selection import FOLDS_DIR, choose, parse_select, selection_rule


def config(tmp_path: Path, name: str = "run", **kw: object) -> FitConfig:
    base: dict[str, object] = dict(shots=6, seed=1, select="kfold:3", lr=0.1)
    return tiny_config(tmp_path, name, **{**base, **kw})


def test_folds_are_disjoint_stratified_and_balanced() -> None:
    y = torch.tensor([0] * 7 + [1] * 5 + [2] * 2)
    folds = stratified_folds(y, 3, seed=0, class_names=["a", "b", "c"])
    joined = torch.cat(folds)
    assert sorted(joined.tolist()) == list(range(len(y)))  # a partition
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for c, n in ((0, 7), (1, 5)):
        per_fold = [int((y[f] == c).sum()) for f in folds]
        assert sum(per_fold) == n and max(per_fold) - min(per_fold) <= 1
    assert [f.tolist() for f in folds] == [
        f.tolist() for f in stratified_folds(y, 3, seed=0, class_names=["a", "b", "c"])
    ]


def test_fold_errors_say_what_to_do() -> None:
    with pytest.raises(DataError, match="class 1 \\('b'\\) has 1 training example"):
        stratified_folds(torch.tensor([0, 0, 1]), 2, 0, ["a", "b"])
    with pytest.raises(DataError, match="use fewer folds"):
        stratified_folds(torch.tensor([0, 0, 1, 1]), 5, 0, ["a", "b"])
    assert parse_select("holdout") == 0 and parse_select("kfold:4") == 4
    assert parse_select("refit") == 1
    for bad in ("kfold:1", "kfold", "cv:3", "kfold:x", "refit:2"):
        with pytest.raises(ReprogramError, match="--select takes 'holdout', 'refit' or 'kfold:K'"):
            parse_select(bad)
    with pytest.raises(ReprogramError, match="cannot share one --query-budget"):
        FitConfig(select="kfold:3", query_budget=100)


def test_choose_averages_fold_curves() -> None:
    def hist(*accs: float) -> dict:
        return {
            "history": [
                {"epoch": e, "val_accuracy": a, "val_loss": 1.0 - a} for e, a in enumerate(accs, 1)
            ]
        }

    # fold 1 peaks at epoch 1, fold 2 at epoch 3; the mean peaks at epoch 2
    choice = choose([hist(0.9, 0.8, 0.1), hist(0.1, 0.6, 0.9)])
    assert choice["epoch"] == 2 and choice["val_accuracy"] == pytest.approx(0.7)
    assert [c["epoch"] for c in choice["curve"]] == [1, 2, 3]
    # an early-stopped fold: only the epochs every fold reached count
    assert [c["epoch"] for c in choose([hist(0.5, 0.6), hist(0.5, 0.5, 0.9)])["curve"]] == [1, 2]
    # penalties: ties go to the stronger penalty (larger alpha, smaller C)
    ridge = [
        {"candidates": [{"alpha": 1.0, "val_accuracy": 0.5}, {"alpha": 10.0, "val_accuracy": 0.5}]}
    ]
    assert choose(ridge)["penalty"] == {"alpha": 10.0}
    logistic = [{"candidates": [{"C": 0.1, "val_accuracy": 0.5}, {"C": 1.0, "val_accuracy": 0.5}]}]
    assert choose(logistic)["penalty"] == {"C": 0.1}


def test_one_standard_error_rule_prefers_the_simpler_choice_unless_validation_is_clear() -> None:
    def run(n_val: int, *accs: float) -> dict:
        history = [{"epoch": e, "val_accuracy": a, "val_loss": 1.0 - a} for e, a in enumerate(accs)]
        return {"history": history, "splits": {"val": n_val}}

    # epoch 3 is best (0.85) but epoch 0 (0.80) is within one standard error on 20 examples
    # (sqrt(0.85 * 0.15 / 20) = 0.080); on 2,000 examples (0.008) it is not: epoch 3 stays
    assert choose([run(20, 0.8, 0.7, 0.75, 0.85)])["epoch"] == 3
    assert choose([run(20, 0.8, 0.7, 0.75, 0.85)], rule="1se")["epoch"] == 0
    assert choose([run(2000, 0.8, 0.7, 0.75, 0.85)], rule="1se")["epoch"] == 3
    # folds pool their validation examples: two folds of 1,000 behave like 2,000
    folds = [run(1000, 0.8, 0.7, 0.75, 0.85), run(1000, 0.8, 0.7, 0.75, 0.85)]
    assert choose(folds, rule="1se")["epoch"] == 3
    # penalties: the strongest within one standard error
    ridge = {
        "candidates": [
            {"alpha": 0.1, "val_accuracy": 0.9},
            {"alpha": 10.0, "val_accuracy": 0.85},
            {"alpha": 1000.0, "val_accuracy": 0.6},
        ],
        "splits": {"val": 30},
    }
    assert choose([ridge])["penalty"] == {"alpha": 0.1}
    assert choose([ridge], rule="1se")["penalty"] == {"alpha": 10.0}
    with pytest.raises(ValueError, match="rule"):
        choose([ridge], rule="2se")


def test_select_texts_with_the_rule() -> None:
    assert parse_select("refit:1se") == 1 and parse_select("kfold:5:1se") == 5
    assert selection_rule("refit:1se") == "1se" and selection_rule("kfold:5") == "best"
    assert selection_rule("holdout") == "best"
    with pytest.raises(ReprogramError, match="use refit:1se"):
        parse_select("holdout:1se")
    for bad in ("refit:2se", "kfold:1:1se", "kfold:5:"):
        with pytest.raises(ReprogramError, match="optionally followed by ':1se'"):
            parse_select(bad)


def test_refit_with_the_rule_trains_the_final_run_for_the_rule_s_epoch(tmp_path: Path) -> None:
    spy = Spy()
    m = fit(config(tmp_path, "refit1se", select="refit:1se"), callbacks=[spy]).metrics
    curve = m["kfold"]["curve"]
    best = max(c["val_accuracy"] for c in curve)
    se = (best * (1 - best) / 10) ** 0.5
    expected = min(c["epoch"] for c in curve if c["val_accuracy"] >= best - se)
    assert m["best_epoch"] == expected == spy.runs[-1][3]
    assert "one-standard-error rule" in m["selection"]
    assert m["kfold"]["select"] == "refit:1se"


class Spy(Callback):
    """Records which runs trained, and what they trained and validated on."""

    name = "spy"

    def __init__(self) -> None:
        self.runs: list[tuple[str, int, int, int | None]] = []

    def on_fit_start(self, trainer) -> None:  # type: ignore[no-untyped-def]
        s = trainer.splits
        self.runs.append((trainer.out.name, len(s.train), len(s.val), trainer.config.select_epoch))


def test_fit_kfold_chooses_on_folds_then_refits_on_every_shot(tmp_path: Path) -> None:
    spy = Spy()
    result = fit(config(tmp_path), callbacks=[spy])
    m = result.metrics
    # digits: 10 classes × 6 shots = 60 examples, 3 folds of 20
    assert [r[:3] for r in spy.runs] == [
        ("0", 40, 20),
        ("1", 40, 20),
        ("2", 40, 20),
        ("run", 60, 60),
    ]
    k = m["kfold"]
    assert k["folds"] == 3 and k["fold_sizes"] == [20, 20, 20]
    assert spy.runs[-1][3] == k["choice"]["epoch"] == m["best_epoch"]
    assert m["epochs"] == max(m["best_epoch"], 1)
    assert m["val_accuracy"] == k["choice"]["val_accuracy"]
    best = max(k["curve"], key=lambda c: (c["val_accuracy"], -c["val_loss"], -c["epoch"]))
    assert best["epoch"] == m["best_epoch"]
    # folds are selection-only: they never score the test split
    for i in range(3):
        fold = json.loads((tmp_path / "run" / FOLDS_DIR / str(i) / "metrics.json").read_text())
        assert fold["test_accuracy"] is None and len(fold["history"]) == 3
        # a finished fold keeps its scores, not its weights (never used again)
        assert not (tmp_path / "run" / FOLDS_DIR / str(i) / "program.safetensors").exists()
    assert (tmp_path / "run" / "program.safetensors").exists()
    from reprogram.errors import ArtifactError

    with pytest.raises(ArtifactError, match="is a fold of a k-fold or refit selection"):
        load_artifact(tmp_path / "run" / FOLDS_DIR / "0")
    curve = [
        sum(
            json.loads((tmp_path / "run" / FOLDS_DIR / str(i) / "metrics.json").read_text())[
                "history"
            ][e]["val_accuracy"]
            for i in range(3)
        )
        / 3
        for e in range(3)
    ]
    assert [c["val_accuracy"] for c in k["curve"]] == pytest.approx(curve)
    assert 0.0 <= m["test_accuracy"] <= 1.0 and m["splits"]["train"] == 60
    artifact = json.loads((tmp_path / "run" / "config.json").read_text())
    assert artifact["target"]["shots"] == 6 and artifact["target"]["select"] == "kfold:3"


def test_refit_selects_on_the_holdout_split_then_trains_on_every_shot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holdout_spy, refit_spy = Spy(), Spy()
    holdout = fit(config(tmp_path, "holdout", select="holdout"), callbacks=[holdout_spy]).metrics
    m = fit(config(tmp_path, "refit", select="refit"), callbacks=[refit_spy]).metrics
    # digits: 60 shots; the usual holdout (one per class) validates the one selection run
    assert [r[:3] for r in holdout_spy.runs] == [("holdout", 50, 10)]
    assert [r[:3] for r in refit_spy.runs] == [("0", 50, 10), ("refit", 60, 60)]
    # its validation rows were trained on by the final run: eval --split val says so
    from reprogram.cli import main

    assert main(["eval", str(tmp_path / "refit"), "--split", "val", "--quiet"]) == 2
    assert "nothing held out to score" in capsys.readouterr().err
    fold = json.loads((tmp_path / "refit" / FOLDS_DIR / "0" / "metrics.json").read_text())
    # the selection run is the holdout run without its test score: same split, same curve
    assert fold["test_accuracy"] is None
    assert [r["val_accuracy"] for r in fold["history"]] == [
        r["val_accuracy"] for r in holdout["history"]
    ]
    assert m["best_epoch"] == holdout["best_epoch"] == refit_spy.runs[-1][3]
    assert m["val_accuracy"] == holdout["val_accuracy"]
    assert m["kfold"]["folds"] == 1 and m["kfold"]["fold_sizes"] == [10]
    assert m["splits"]["train"] == 60 and m["splits"]["val"] == 10
    assert "held-out 10 validation examples chose epoch" in m["selection"]
    assert 0.0 <= m["test_accuracy"] <= 1.0
    # train_seconds is the final run's; the selection run's time is reported beside it
    assert fold["train_seconds"] > 0
    assert m["selection_seconds"] == pytest.approx(fold["train_seconds"], abs=1e-3)
    assert "selection_seconds" not in holdout


class CountValidations(Callback):
    """Counts validation passes per run; ``force`` turns validation back on in final runs."""

    name = "count_validations"

    def __init__(self, force: bool = False) -> None:
        self.force, self.counts = force, {}  # type: ignore[var-annotated]

    def on_fit_start(self, trainer) -> None:  # type: ignore[no-untyped-def]
        if self.force:
            trainer.config.score_val = True
        name, evaluate = trainer.out.name, trainer.evaluate
        self.counts[name] = 0

        def counted(split, *args, **kwargs):  # type: ignore[no-untyped-def]
            if split is trainer.splits.val:
                self.counts[name] += 1
            return evaluate(split, *args, **kwargs)

        trainer.evaluate = counted


@pytest.mark.parametrize("head", ["sgd", "ridge"])
def test_refit_final_run_skips_validation_and_scores_the_same(tmp_path: Path, head: str) -> None:
    options = {"mapping_options": {"head": head}}
    skip, force = CountValidations(), CountValidations(force=True)
    a = fit(config(tmp_path, "a", select="refit", **options), callbacks=[skip])
    b = fit(config(tmp_path, "b", select="refit", **options), callbacks=[force])
    epochs = 3 + (head == "ridge")  # the ridge head's untrained start is candidate epoch 0
    assert skip.counts == {"0": epochs, "a": 0}  # the selection run validates; the final not
    assert force.counts["b"] >= 1
    history = a.metrics["history"]
    assert history and all(r["val_accuracy"] is None and r["val_loss"] is None for r in history)
    assert a.metrics["val_accuracy"] == b.metrics["val_accuracy"]  # the selection run's
    assert a.metrics["best_epoch"] == b.metrics["best_epoch"]
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"]
    assert a.metrics["test_loss"] == pytest.approx(b.metrics["test_loss"], abs=0, rel=0)
    adapter_a = load_file(str(tmp_path / "a" / "program.safetensors"))
    adapter_b = load_file(str(tmp_path / "b" / "program.safetensors"))
    assert adapter_a.keys() == adapter_b.keys()
    for key, value in adapter_a.items():
        assert torch.equal(value, adapter_b[key]), key


def test_epochs_zero_runs_no_selection_runs(tmp_path: Path) -> None:
    """--epochs 0 has one candidate (the ridge head's start): no folds, straight to the refit."""
    from reprogram.cli import summary

    options = {"mapping_options": {"head": "ridge"}, "epochs": 0}
    spies = {select: Spy() for select in ("refit:1se", "kfold:3")}
    results = {
        select: fit(
            config(tmp_path, select.replace(":", "_"), select=select, **options), callbacks=[spy]
        )
        for select, spy in spies.items()
    }
    for select, spy in spies.items():
        assert [r[:3] for r in spy.runs] == [(select.replace(":", "_"), 60, 60)]
        assert not (tmp_path / select.replace(":", "_") / FOLDS_DIR).exists()
        m = results[select].metrics
        # nothing held out: the ridge head's leave-one-out accuracy on the 60 is the estimate
        (fit0,) = m["callbacks"]["ridge_head"]["fits"]
        assert m["val_accuracy"] == fit0["loo_accuracy"] and 0.0 < m["val_accuracy"] <= 1.0
        assert m["val_loss"] is None
        assert m["kfold"]["folds"] == 0 and m["splits"]["val"] == 0
        assert "nothing to choose" in m["selection"] and "leave-one-out" in m["selection"]
        assert m["selection_seconds"] == 0.0
        assert m["best_epoch"] == 0 and 0.0 <= m["test_accuracy"] <= 1.0
        assert m["train_seconds"] > 0  # the head's fit is the training
        text = summary(results[select])
        assert f"val accuracy    {m['val_accuracy']:.4f}  (leave-one-out" in text
    # both selections make the same single run: the same head, the same test score
    a, b = (results[s].metrics for s in spies)
    assert a["test_accuracy"] == b["test_accuracy"] and a["test_loss"] == b["test_loss"]
    head_a = load_file(str(tmp_path / "refit_1se" / "program.safetensors"))
    head_b = load_file(str(tmp_path / "kfold_3" / "program.safetensors"))
    for key, value in head_a.items():
        assert torch.equal(value, head_b[key]), key


def test_epochs_zero_needs_no_validation_example_per_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--epochs 0 holds nothing out, so one training example per class is enough (holdout
    selection still refuses it), and eval scores the test split without carving validation."""
    shots = {"shots": 1, "mapping_options": {"head": "ridge"}, "epochs": 0}
    result = fit(config(tmp_path, "one", select="refit:1se", **shots))
    m = result.metrics
    assert m["splits"]["train"] == 10 and m["splits"]["val"] == 0
    assert m["kfold"]["folds"] == 0 and 0.0 <= m["test_accuracy"] <= 1.0
    with pytest.raises(DataError, match="leaves none to train on"):
        fit(config(tmp_path, "held", select="refit", **{**shots, "epochs": 1}))
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "one"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert scored["test_accuracy"] == m["test_accuracy"]


def test_score_val_off_needs_a_fixed_epoch(tmp_path: Path) -> None:
    with pytest.raises(ReprogramError, match="fix select_epoch"):
        config(tmp_path, select="holdout", score_val=False)


class CrashInFold(Callback):
    name = "crash"

    def __init__(self, fold: str, epoch: int) -> None:
        self.fold, self.epoch = fold, epoch

    def on_epoch_start(self, trainer, epoch) -> None:  # type: ignore[no-untyped-def]
        if trainer.out.name == self.fold and epoch == self.epoch:
            raise Crash


def test_kfold_resumes_keeping_finished_folds(tmp_path: Path) -> None:
    straight = fit(config(tmp_path, "straight"))
    with pytest.raises(Crash):
        fit(config(tmp_path, "resumed"), callbacks=[CrashInFold("1", 2)])
    fold0 = tmp_path / "resumed" / FOLDS_DIR / "0" / "metrics.json"
    stamp = fold0.stat().st_mtime_ns
    with pytest.raises(ReprogramError, match="unfinished run \\(pass --resume"):
        fit(config(tmp_path, "resumed"))
    with pytest.raises(ReprogramError, match="different settings"):
        fit(config(tmp_path, "resumed", seed=2, resume=True))
    resumed = fit(config(tmp_path, "resumed", resume=True))
    assert fold0.stat().st_mtime_ns == stamp  # fold 0 was not trained again
    a = load_file(str(tmp_path / "straight" / "program.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "program.safetensors"))
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert straight.metrics["kfold"]["curve"] == resumed.metrics["kfold"]["curve"]
    assert straight.metrics["test_accuracy"] == resumed.metrics["test_accuracy"]
    # --overwrite starts over, folds included
    fit(config(tmp_path, "resumed", overwrite=True))
    assert fold0.stat().st_mtime_ns != stamp


def test_probe_start_can_be_chosen_as_epoch_zero(tmp_path: Path) -> None:
    m = fit(config(tmp_path, mapping_options={"init": "probe"}, lr=1e-6, epochs=1)).metrics
    assert [c["epoch"] for c in m["kfold"]["curve"]] == [0, 1]
    assert m["best_epoch"] == m["kfold"]["choice"]["epoch"]


@pytest.fixture(scope="module")
def waves(tmp_path_factory: pytest.TempPathFactory) -> str:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 4 * np.pi, 32)
    xs, ys = [], []
    for label, shape in enumerate((np.sin, lambda v: np.sign(np.sin(v)))):
        for _ in range(16):
            xs.append(shape(t + rng.uniform(0, 2 * np.pi)) + 0.2 * rng.normal(size=t.size))
            ys.append(label)
    x, y = np.array(xs, dtype=np.float32), np.array(ys)
    path = tmp_path_factory.mktemp("kfold") / "waves.npz"
    np.savez(path, x_train=x[::2], y_train=y[::2], x_test=x[1::2], y_test=y[1::2])
    return f"npz:{path}"


def test_minirocket_kfold_fixes_the_penalty(tmp_path: Path, waves: str) -> None:
    cfg = BaselineConfig(
        method="minirocket",
        method_options={"n_kernels": 840, "alphas": "0.1,10,1000"},
        target=waves,
        select="kfold:4",
        out=str(tmp_path / "mr"),
        progress=False,
    )
    m = run_baseline(cfg).metrics
    alpha = m["kfold"]["choice"]["penalty"]["alpha"]
    assert m["selected"] == {"alpha": alpha} and [c["alpha"] for c in m["candidates"]] == [alpha]
    assert [c["alpha"] for c in m["kfold"]["curve"]] == [0.1, 10.0, 1000.0]
    assert m["splits"]["train"] == 16 and m["test_accuracy"] > 0.8
    # it reads no source, so the state --resume compares names none (as config.json does)
    state = json.loads((tmp_path / "mr" / "kfold.json").read_text())
    assert "source" not in state["signature"] and state["signature"]["method"] == "minirocket"


def test_minirocket_refit_keeps_the_holdout_choice(tmp_path: Path, waves: str) -> None:
    def run(select: str) -> dict:
        cfg = BaselineConfig(
            method="minirocket",
            method_options={"n_kernels": 840, "alphas": "0.1,10,1000"},
            target=waves,
            select=select,
            out=str(tmp_path / select),
            progress=False,
        )
        return run_baseline(cfg).metrics

    holdout, refit = run("holdout"), run("refit")
    assert refit["selected"] == holdout["selected"]
    assert refit["kfold"]["choice"]["val_accuracy"] == holdout["val_accuracy"]
    assert holdout["splits"]["train"] < refit["splits"]["train"] == 16


def test_cli_select_flag_and_bench_refuses_mixed_settings(tmp_path: Path, waves: str) -> None:
    out = tmp_path / "scratch"
    args = ["baseline", "--method", "scratch", "--target", waves, "--epochs", "2", "--quiet"]
    assert main([*args, "--select", "kfold:2", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["kfold"]["folds"] == 2 and m["splits"]["train"] == 16
    folds = [json.loads((out / "folds" / k / "metrics.json").read_text()) for k in "01"]
    spent = sum(f["train_seconds"] for f in folds)
    assert m["selection_seconds"] == pytest.approx(spent, abs=1e-3)
    from reprogram_bench.ucr import Cell, _row, parse

    # a bench cell's time is its whole price: both selection runs plus the final run
    row = _row(Cell(parse("scratch", ""), "waves", 0), out, None)
    assert row["train_seconds"] == pytest.approx(m["train_seconds"] + spent, abs=2e-3)
    assert main([*args, "--select", "kfold:1", "--out", str(tmp_path / "bad")]) == 2
    from reprogram_bench.ucr import _check_earlier

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "results.json").write_text(
        json.dumps({"meta": {"settings": {"epochs": 100, "max_train": None}}})
    )
    _check_earlier(suite, {"epochs": 100, "max_train": None, "select": "holdout"})
    with pytest.raises(ReprogramError, match="select='holdout'; this call asks select='kfold:5'"):
        _check_earlier(suite, {"epochs": 100, "max_train": None, "select": "kfold:5"})


def test_the_summary_notes_a_handful_of_validation_examples(tmp_path: Path) -> None:
    """Holdout with a few validation examples gets a note pointing at --select kfold:5; a
    k-fold run, or one whose validation is large enough, does not."""
    from reprogram.cli import summary

    small = fit(config(tmp_path, "small", select="holdout", epochs=2))
    assert 0 < small.metrics["splits"]["val"] < 20
    assert "note" in summary(small) and "--select kfold:5" in summary(small)
    folded = fit(config(tmp_path, "folded", select="kfold:3", epochs=2))
    assert "--select kfold:5" not in summary(folded)
    large = fit(config(tmp_path, "large", select="holdout", shots=None, epochs=2))
    assert large.metrics["splits"]["val"] >= 20 and "--select kfold:5" not in summary(large)


def test_the_small_validation_note_speaks_of_error_for_regression() -> None:
    from reprogram.cli.report import _small_validation

    common = {"splits": {"val": 8}, "epochs": 5}
    classes = _small_validation({**common, "test_accuracy": 0.5, "test_rmse": None})
    values = _small_validation({**common, "test_accuracy": None, "test_rmse": 1.2})
    assert classes is not None and "accuracy in steps of 12%" in classes
    assert values is not None and "accuracy" not in values and "measured on 8 rows" in values
