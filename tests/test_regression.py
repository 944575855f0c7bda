"""Regression targets: the task kind, splits, training, selection, eval and forest peers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reprogram import FitConfig, fit, load_artifact
from reprogram.baselines.base import run_baseline
from reprogram.config import BaselineConfig
from reprogram.data import load_target
from reprogram.data.splits import prepare_splits
from reprogram.errors import DataError, ReprogramError
from reprogram.tasks import CLASSIFICATION, REGRESSION


def test_regression_summary_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    pred = y + rng.normal(scale=0.3, size=50)
    scores, target = torch.tensor(pred).view(-1, 1), torch.tensor(y)
    halves = REGRESSION.totals(scores[:20], target[:20]) + REGRESSION.totals(
        scores[20:], target[20:]
    )
    summary = REGRESSION.summary(halves)
    assert summary["rmse"] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)))
    assert summary["mae"] == pytest.approx(np.mean(np.abs(pred - y)))
    r2 = 1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean()) ** 2)
    assert summary["r2"] == pytest.approx(r2)
    assert REGRESSION.better({"loss": 0.5}, {"loss": 0.6})
    assert not REGRESSION.better({"loss": 0.6}, {"loss": 0.6})


def test_classification_totals_are_cross_entropy_and_hits() -> None:
    scores = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = torch.tensor([0, 0, 0])
    summary = CLASSIFICATION.summary(CLASSIFICATION.totals(scores, y))
    assert summary["accuracy"] == pytest.approx(2 / 3)
    assert summary["loss"] == pytest.approx(float(F.cross_entropy(scores, y)))


def test_solubility_is_a_regression_target_with_its_own_split() -> None:
    pytest.importorskip("rdkit")
    data = load_target("solubility")
    assert data.task == "regression" and data.class_names == ["logS"]
    assert (len(data.train), len(data.test)) == (1025, 257)
    assert data.train.y.dtype == torch.float32
    splits = prepare_splits(data, shots=64, seed=1)
    assert (len(splits.train), len(splits.val)) == (51, 13)
    with pytest.raises(DataError, match="more examples than the 1025"):
        prepare_splits(data, shots=5000)


def _values_csv(tmp_path: Path) -> str:
    rng = np.random.default_rng(2)
    rows = ["sequence,label"]
    for _ in range(60):
        n = int(rng.integers(3, 12))
        seq = "".join(rng.choice(list("ACDK"), n))
        rows.append(f"{seq},{0.5 * seq.count('K') - 0.2 * len(seq) + rng.normal(0, 0.05):.4f}")
    path = tmp_path / "values.csv"
    path.write_text("\n".join(rows) + "\n")
    return f"csv:{path}#task=regression"


def _soft_prompt(target: str, out: Path, **settings: object) -> FitConfig:
    """A two-vector soft prompt with a probe-started linear head on the tiny language model."""
    return FitConfig(source="tiny-random-lm", target=target, program="soft-prompt",
                     program_options={"length": 2}, mapping="linear",
                     mapping_options={"init": "probe"}, out=str(out), progress=False,
                     plots=False, **settings)  # type: ignore[arg-type]


def test_fit_and_eval_a_regression_target(tmp_path: Path) -> None:
    from reprogram.cli import main

    target = _values_csv(tmp_path)
    data = load_target(target)
    assert data.task == "regression" and data.class_names == ["value"]
    config = _soft_prompt(target, tmp_path / "run", epochs=2)
    result = fit(config)
    metrics = result.metrics
    assert metrics["val_accuracy"] is None and metrics["test_accuracy"] is None
    # predict gives the values (not an argmax over one output), the same after reloading
    x = data.test.x[:5]
    values = result.model.predict(x)
    assert values.shape == (5,) and values.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(values, result.model(x)[:, 0])
    loaded, _ = load_artifact(tmp_path / "run")
    torch.testing.assert_close(loaded.predict(x), values)
    assert metrics["test_rmse"] == pytest.approx(np.sqrt(metrics["test_loss"]))
    assert {"test_mae", "test_r2", "val_rmse"} <= set(metrics)
    assert metrics["selection"].startswith("lowest validation mean squared error")
    assert main(["eval", str(tmp_path / "run")]) == 0
    with pytest.raises(ReprogramError, match="one-standard-error rule"):
        fit(FitConfig(**{**config.__dict__, "select": "refit:1se", "out": str(tmp_path / "1")}))


def test_value_folds_cover_every_example_and_span_the_values() -> None:
    from reprogram.data.splits import value_folds

    y = torch.tensor(np.random.default_rng(3).normal(size=23), dtype=torch.float32)
    folds = value_folds(y, 4, seed=0)
    assert torch.equal(torch.sort(torch.cat(folds)).values, torch.arange(23))
    assert sorted(len(f) for f in folds) == [5, 6, 6, 6]
    ranks = torch.argsort(torch.argsort(y))  # each fold holds one of every run of 4 ranks
    for fold in folds:
        assert sorted((ranks[fold] // 4).tolist())[:5] == [0, 1, 2, 3, 4]
    assert [f.tolist() for f in value_folds(y, 4, seed=0)] == [f.tolist() for f in folds]
    assert [f.tolist() for f in value_folds(y, 4, seed=1)] != [f.tolist() for f in folds]
    with pytest.raises(DataError, match="at least 10 training examples"):
        value_folds(y[:9], 5, seed=0)


def test_kfold_selection_chooses_a_regression_epoch_on_the_folds_mean_mse(
    tmp_path: Path,
) -> None:
    target = _values_csv(tmp_path)
    config = _soft_prompt(target, tmp_path / "k", epochs=3, batch_size=16, select="kfold:3")
    metrics = fit(config).metrics
    record = metrics["kfold"]
    assert record["folds"] == 3 and sum(record["fold_sizes"]) == 48  # 60 - the 20% test
    curve = {c["epoch"]: c["val_loss"] for c in record["curve"]}
    folds = [json.loads((tmp_path / "k" / "folds" / str(i) / "metrics.json").read_text())
             for i in range(3)]
    for epoch, loss in curve.items():
        per_fold = [next(r["val_loss"] for r in m["history"] if r["epoch"] == epoch)
                    for m in folds]
        assert loss == pytest.approx(sum(per_fold) / 3)
        assert all(m["test_loss"] is None for m in folds)  # no fold reads the test split
    chosen = record["choice"]["epoch"]
    assert curve[chosen] == min(curve.values())
    assert metrics["val_rmse"] == pytest.approx(np.sqrt(curve[chosen]))
    assert metrics["selection"].startswith("3-fold cross-validation")
    assert "val MSE" in metrics["selection"] and metrics["test_rmse"] is not None


def test_forest_peer_regresses_and_reloads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = _values_csv(tmp_path)
    result = run_baseline(
        BaselineConfig(
            method="composition-forest",
            target=target,
            method_options={"trees": "20"},
            out=str(tmp_path / "rf"),
            progress=False,
            plots=False,
        )
    )
    assert result.metrics["test_rmse"] < 1.0
    loaded, _ = load_artifact(tmp_path / "rf")
    test = load_target(target).test
    torch.testing.assert_close(loaded(test.x), result.model(test.x))
    from reprogram.cli import main

    new = tmp_path / "new.txt"
    new.write_text("KKKK\nACD\n")
    assert main(["predict", str(tmp_path / "rf"), str(new), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and "class" not in rows[0]
    assert rows[0]["value"] > rows[1]["value"]  # four K's: a larger value
    # --labelled: the values scored against the file's labels (RMSE, MAE), as a class
    # model's predict prints its accuracy
    given = tmp_path / "given.csv"
    given.write_text(f"sequence,label\nKKKK,{rows[0]['value'] + 1}\nACD,{rows[1]['value'] - 1}\n")
    assert main(["predict", str(tmp_path / "rf"), str(given), "--labelled"]) == 0
    assert "RMSE 1.0000, MAE 1.0000 (2 rows)" in capsys.readouterr().out
    assert main(["predict", str(tmp_path / "rf"), str(given), "--labelled", "--json"]) == 0
    both = capsys.readouterr()
    assert len(json.loads(both.out)) == 2 and "RMSE 1.0000" in both.err  # stdout: JSON only
    with pytest.raises(ReprogramError, match="composition-logreg classifies"):
        run_baseline(
            BaselineConfig(
                method="composition-logreg",
                target=target,
                out=str(tmp_path / "lr"),
                progress=False,
                plots=False,
            )
        )


def test_csv_regression_labels_must_be_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("sequence,label\nACD,1.5\nKKD,high\n")
    with pytest.raises(DataError, match="row 2: label 'high' is not a finite number"):
        load_target(f"csv:{path}#task=regression")


def test_trained_peers_start_a_regression_head_at_the_training_mean(tmp_path: Path) -> None:
    """A new head starts at zero; on a regression target it starts at the training targets'
    mean instead (logS sits near −3: from zero the first epochs only learn the offset)."""
    target = _values_csv(tmp_path)
    config = BaselineConfig(method="finetune", source="tiny-random-lm", target=target,
                            epochs=1, lr=1e-12, out=str(tmp_path / "ft"), progress=False,
                            plots=False)
    result = run_baseline(config)
    splits = prepare_splits(load_target(target), val_fraction=config.val_fraction,
                            seed=config.seed)
    test = load_target(target).test
    with torch.no_grad():  # nothing trained (lr 1e-12): the zero-weight head gives the mean
        predicted = result.model(test.x).squeeze(-1)
    torch.testing.assert_close(predicted, torch.full_like(predicted, float(splits.train.y.mean())))


def test_a_mapping_that_scores_classes_is_refused_for_a_regression_target(tmp_path: Path) -> None:
    """random, verbalizer and the count-fitted mappings pick source tokens per class; on a
    value to regress they answered log-probabilities (or crashed mid-fit): refused up front."""
    path = tmp_path / "values.csv"
    path.write_text("sequence,label\n" + "".join(
        f"{'KRDE'[i % 4] * (i % 5 + 2)}A,{i * 0.1:.1f}\n" for i in range(30)))
    for mapping in ("random", "flm", "verbalizer"):
        config = FitConfig(source="tiny-random-causal-lm", target=f"csv:{path}#task=regression",
                           program="soft-prompt", mapping=mapping, epochs=1, shots=16,
                           out=str(tmp_path / mapping), progress=False, plots=False)
        with pytest.raises(ReprogramError, match=r"needs a value\. Use --mapping linear"):
            fit(config)
        assert not (tmp_path / mapping).exists()
