"""Baselines: each method trains on tiny data under the protocol, and its artifact reloads.

Tiny source (``tiny-random-cnn``) and the 8×8 ``digits`` target; a few epochs each.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import Crash, CrashAt
from safetensors.torch import load_file
from sklearn.linear_model import LogisticRegression

from reprogram import load_artifact
from reprogram.baselines import BaselineConfig, run_baseline
from reprogram.cli import main
from reprogram.data import load_target
from reprogram.data.base import Split, TargetData
from reprogram.errors import ArtifactError
from reprogram.evaluate import loss_and_accuracy, score
from reprogram.probe import fit_probe, fold_logistic
from reprogram.sources import build_source
from reprogram.sources.module import from_module, tiny_cnn

METHODS = ["linear-probe", "pixels-logreg", "finetune", "scratch"]
METRIC_KEYS = {
    "val_accuracy",
    "test_accuracy",
    "trainable_parameters",
    "source_parameters",
    "train_seconds",
    "epochs",
    "best_epoch",
}


def config(tmp_path: Path, method: str, name: str | None = None, **kw: object) -> BaselineConfig:
    base = dict(
        method=method,
        source="tiny-random-cnn",
        target="digits",
        shots=20,
        epochs=2,
        seed=1,
        out=str(tmp_path / (name or method)),
        progress=False,
    )
    base.update(kw)
    return BaselineConfig(**base)  # type: ignore[arg-type]


def rescore(out: Path, split: str = "test") -> float:
    """Accuracy of the reloaded artifact on the split its run saw (as ``reprogram eval``)."""
    from reprogram.cli import _load_eval_splits

    model, cfg = load_artifact(out)
    splits, batch = _load_eval_splits(cfg)
    if split == "test":
        splits.test.unseal()
        data = splits.test.open()
    else:
        data = splits.val
    return loss_and_accuracy(score(model, data.x, data.y, batch))[1]


@pytest.mark.parametrize("method", METHODS)
def test_each_baseline_writes_an_artifact_that_eval_reproduces(tmp_path: Path, method: str) -> None:
    result = run_baseline(config(tmp_path, method))
    m = result.metrics
    assert METRIC_KEYS <= set(m)
    assert m["splits"] == {"train": 160, "val": 40, "test": 539}
    files = {p.name for p in result.out.iterdir()}
    assert {"config.json", "program.safetensors", "metrics.json"} <= files
    cfg = json.loads((result.out / "config.json").read_text())
    assert cfg["format"] == "reprogram-baseline-v1" and cfg["baseline"]["method"] == method
    assert rescore(result.out) == m["test_accuracy"]
    assert rescore(result.out, "val") == m["val_accuracy"]


def test_pixel_logistic_regression_learns_digits(tmp_path: Path) -> None:
    m = run_baseline(config(tmp_path, "pixels-logreg", shots=30)).metrics
    assert m["test_accuracy"] > 0.8  # sklearn's logistic regression on digits pixels: ~0.9
    assert m["source_parameters"] is None and m["trainable_parameters"] == 65 * 10
    best = max(m["candidates"], key=lambda c: (c["val_accuracy"], -c["C"]))
    assert m["selected"]["C"] == best["C"]


def test_logistic_selection_never_looks_at_test_labels(tmp_path: Path) -> None:
    data = load_target("digits")
    rng = np.random.default_rng(0)
    scrambled = TargetData(
        name="digits-scrambled",
        train=data.train,
        test=Split(data.test.x, torch.from_numpy(rng.permutation(data.test.y.numpy()))),
        class_names=data.class_names,
    )
    a = run_baseline(config(tmp_path, "linear-probe", "a"), target=data).metrics
    b = run_baseline(config(tmp_path, "linear-probe", "b"), target=scrambled).metrics
    assert a["selected"] == b["selected"] and a["candidates"] == b["candidates"]
    assert a["val_accuracy"] == b["val_accuracy"]
    assert a["test_accuracy"] != b["test_accuracy"]


def test_fold_logistic_matches_sklearn_predictions() -> None:
    rng = np.random.default_rng(0)
    for k in (2, 4):
        x = rng.normal(size=(120, 5)) + np.repeat(np.arange(k), 120 // k)[:, None]
        y = np.repeat(np.arange(k), 120 // k)
        mean, std = x.mean(0), x.std(0)
        clf = LogisticRegression(C=1.0).fit((x - mean) / std, y)
        w, b = fold_logistic(clf.coef_, clf.intercept_, clf.classes_, mean, std, k)
        ours = (torch.from_numpy(x).float() @ w.T + b).argmax(-1).numpy()
        np.testing.assert_array_equal(ours, clf.predict((x - mean) / std))


def test_finetune_trains_every_weight_and_leaves_the_source_alone(tmp_path: Path) -> None:
    source = build_source("tiny-random-cnn")
    before = {k: v.clone() for k, v in source.module.state_dict().items()}
    result = run_baseline(config(tmp_path, "finetune", lr=0.05), source=source)
    for key, value in source.module.state_dict().items():
        assert torch.equal(before[key], value), key
    body = result.model.body.state_dict()
    assert not torch.equal(body["0.weight"], before["0.weight"])  # the copy did train
    classifier = sum(before[k].numel() for k in ("8.weight", "8.bias"))
    head = 16 * 10 + 10
    assert result.metrics["trainable_parameters"] == source.num_parameters - classifier + head


def test_baseline_artifact_refuses_another_source(tmp_path: Path) -> None:
    other = from_module(tiny_cnn(100, seed=7), input_size=(3, 32, 32), name="tiny-random-cnn")
    out = run_baseline(config(tmp_path, "linear-probe")).out
    with pytest.raises(ArtifactError, match="exact model"):
        load_artifact(out, source=other)


def test_scratch_resume_continues_exactly(tmp_path: Path) -> None:
    straight = run_baseline(config(tmp_path, "scratch", "straight", epochs=3)).metrics
    with pytest.raises(Crash):
        run_baseline(config(tmp_path, "scratch", "resumed", epochs=3), callbacks=[CrashAt(3)])
    resumed = run_baseline(config(tmp_path, "scratch", "resumed", epochs=3, resume=True)).metrics
    a = load_file(str(tmp_path / "straight" / "program.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "program.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert straight["test_accuracy"] == resumed["test_accuracy"]
    assert [r["val_loss"] for r in straight["history"]] == [
        r["val_loss"] for r in resumed["history"]
    ]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--method", "nope"], "unknown baseline 'nope'"),
        (["--method", "pixels-logreg", "--method-opt", "c_grid=a,b"], "comma-separated"),
        (["--method", "scratch", "--method-opt", "depth=3"], "has no option depth"),
        (["--method", "finetune", "--lr", "-1"], "--lr must be a positive"),
    ],
)
def test_bad_baseline_arguments_are_clear_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], needle: str
) -> None:
    common = ["--source", "tiny-random-cnn", "--target", "digits", "--quiet"]
    code = main(["baseline", *argv, *common, "--out", str(tmp_path / "x")])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert needle in err and "Traceback" not in err


def test_cli_baseline_then_eval(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "probe"
    argv = ["baseline", "--method", "linear-probe", "--source", "tiny-random-cnn"]
    argv += ["--target", "digits", "--shots", "20", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "baseline linear-probe" in printed and "chosen on validation: C=" in printed
    assert main(["eval", str(out)]) == 0
    assert "yes, exactly" in capsys.readouterr().out


def test_probe_cv_selection_never_looks_at_validation_labels() -> None:
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 20)
    x = torch.from_numpy(rng.normal(size=(60, 6)) + y[:, None] * 0.7).float()
    yt = torch.from_numpy(y)
    xv = torch.from_numpy(rng.normal(size=(30, 6))).float()
    yv, yv_shuffled = torch.arange(30) % 3, torch.from_numpy(rng.permutation(30) % 3)
    a = fit_probe(x, yt, xv, yv, 3, select="cv", seed=0)
    b = fit_probe(x, yt, xv, yv_shuffled, 3, select="cv", seed=0)
    assert a.select == "cv" and a.c == b.c and a.score == b.score
    assert torch.equal(a.weight, b.weight)
    assert [c["score"] for c in a.candidates] == [c["score"] for c in b.candidates]
    # by validation, the same candidates are scored on the labels given
    assert fit_probe(x, yt, xv, yv, 3, select="val").select == "val"


def test_probe_warm_started_path_matches_cold_fits() -> None:
    from reprogram.probe import _path, _predict

    rng = np.random.default_rng(0)
    for k in (2, 3):
        y = rng.integers(0, k, 120)
        z = rng.normal(size=(120, 20)) + 0.8 * np.eye(k, 20)[y]
        cs = [1e-3, 1e-1, 10.0]
        for c, (coef, intercept, classes) in zip(cs, _path(z, y, cs, 5000), strict=True):
            cold = LogisticRegression(C=c, max_iter=5000).fit(z, y)
            assert np.allclose(coef, cold.coef_, atol=1e-3)
            assert np.allclose(intercept, cold.intercept_, atol=1e-3)
            assert (_predict(z, coef, intercept, classes) == cold.predict(z)).all()
