"""Time-series baselines (``minirocket``, ``scratch`` on series) under the fit protocol.

The ``waves`` fixture (conftest.py) is a tiny synthetic series task saved as ``npz:``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.linear_model import RidgeClassifier

from reprogram import load_artifact
from reprogram.baselines import BaselineConfig, run_baseline
from reprogram.baselines.minirocket import fit_ridge
from reprogram.cli import _load_eval_splits, main
from reprogram.data import load_target
from reprogram.data.base import Split, TargetData
from reprogram.errors import ReprogramError
from reprogram.evaluate import loss_and_accuracy, score


def config(tmp_path: Path, target: str, method: str, name: str | None = None, **kw: object):
    base = dict(
        method=method, target=target, epochs=2, seed=0, out=str(tmp_path / (name or method))
    )
    base.update(progress=False, **kw)
    return BaselineConfig(**base)  # type: ignore[arg-type]


def rescore(out: Path) -> float:
    model, cfg = load_artifact(out)
    splits, batch = _load_eval_splits(cfg)
    splits.test.unseal()
    test = splits.test.open()
    return loss_and_accuracy(score(model, test.x, test.y, batch))[1]


def test_minirocket_end_to_end_and_eval_reproduces(tmp_path: Path, waves: str) -> None:
    result = run_baseline(config(tmp_path, waves, "minirocket", method_options={"n_kernels": 840}))
    m = result.metrics
    assert m["test_accuracy"] > 0.8  # three easy shapes; chance is 1/3
    assert m["splits"] == {"train": 30, "val": 6, "test": 30}
    assert m["features"] == 840 and m["trainable_parameters"] == 3 * 840 + 3
    best = max(m["candidates"], key=lambda c: (c["val_accuracy"], c["alpha"]))
    assert m["selected"] == {"alpha": best["alpha"]}
    state = load_file(str(result.out / "program.safetensors"))  # tensors only, no pickle
    assert {"featurizer.biases", "featurizer.dilations", "head.weight"} <= set(state)
    assert state["featurizer.biases"].abs().sum() > 0
    assert rescore(result.out) == m["test_accuracy"]
    cfg = json.loads((result.out / "config.json").read_text())
    assert cfg["target"]["modality"] == "series" and cfg["target"]["input_shape"] == [1, 48]


def test_minirocket_selection_never_looks_at_test_labels(tmp_path: Path, waves: str) -> None:
    data = load_target(waves)
    rng = np.random.default_rng(1)
    scrambled = TargetData(
        name="scrambled",
        train=data.train,
        test=Split(data.test.x, torch.from_numpy(rng.permutation(data.test.y.numpy()))),
        class_names=data.class_names,
        modality="series",
    )
    options = {"n_kernels": 84}
    a = run_baseline(config(tmp_path, waves, "minirocket", "a", method_options=options))
    b = run_baseline(
        config(tmp_path, waves, "minirocket", "b", method_options=options), target=scrambled
    )
    assert a.metrics["candidates"] == b.metrics["candidates"]
    assert a.metrics["val_accuracy"] == b.metrics["val_accuracy"]
    assert a.metrics["test_accuracy"] != b.metrics["test_accuracy"]


def test_kernel_baselines_score_validation_on_the_features_they_already_have(
    tmp_path: Path, waves: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reprogram.transforms.minirocket import MiniRocketFeatures

    options = {"n_kernels": 84}
    result = run_baseline(config(tmp_path, waves, "minirocket", "h", method_options=options))
    model, cfg = load_artifact(result.out)
    splits, batch = _load_eval_splits(cfg)
    m = result.metrics  # the validation figures equal the saved model's, bit for bit
    assert loss_and_accuracy(score(model, splits.val.x, splits.val.y, batch)) == (
        m["val_loss"],
        m["val_accuracy"],
    )
    seen: list[int] = []
    forward = MiniRocketFeatures.forward

    def counting(self: MiniRocketFeatures, x: torch.Tensor) -> torch.Tensor:
        seen.append(len(x))
        return forward(self, x)

    monkeypatch.setattr(MiniRocketFeatures, "forward", counting)
    run_baseline(config(tmp_path, waves, "minirocket", "r", select="refit", method_options=options))
    # selection: 30 train + 6 validation series; the refit: the 36 once (its validation split
    # is its training split), then the 30 test series
    assert sum(seen) == 30 + 6 + 36 + 30


def test_minirocket_logistic_head_and_image_targets_refused(tmp_path: Path, waves: str) -> None:
    options = {"n_kernels": 84, "classifier": "logistic", "c_grid": "0.1,1"}
    m = run_baseline(config(tmp_path, waves, "minirocket", method_options=options)).metrics
    assert set(m["selected"]) == {"C"} and len(m["candidates"]) == 2
    with pytest.raises(ReprogramError, match=r"minirocket classifies univariate time series"):
        run_baseline(config(tmp_path, "digits", "minirocket", "img"))


@pytest.mark.parametrize("n", [30, 200])  # fewer and more examples than features
def test_ridge_matches_scikit_learn(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 60)) + np.repeat(np.arange(3), n // 3 + 1)[:n, None] * 0.3
    y = np.repeat(np.arange(3), n // 3 + 1)[:n]
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y)
    w, b, alpha, _ = fit_ridge(xt, yt, xt, yt, 3, [2.0])
    mean, std = x.mean(0), x.std(0)
    theirs = RidgeClassifier(alpha=2.0).fit((x - mean) / std, y).predict((x - mean) / std)
    ours = (xt @ w.T + b).argmax(-1).numpy()
    assert alpha == 2.0 and (ours == theirs).mean() >= 0.98  # float32 folding may flip a tie


def test_scratch_on_series_is_an_fcn_and_eval_reproduces(tmp_path: Path, waves: str) -> None:
    result = run_baseline(config(tmp_path, waves, "scratch", method_options={"width": 4}))
    assert type(result.model).__name__ == "SeriesFCN"
    params = sum(p.numel() for p in result.model.parameters())
    assert result.metrics["trainable_parameters"] == params
    x = load_target(waves).test.x
    assert torch.isnan(x).any() and torch.isfinite(result.model(x)).all()
    assert rescore(result.out) == result.metrics["test_accuracy"]


def test_cli_predict_on_a_series_artifact(
    tmp_path: Path, waves: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fcn"
    argv = ["baseline", "--method", "scratch", "--target", waves, "--epochs", "1"]
    assert main([*argv, "--method-opt", "width=4", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    series = tmp_path / "new.npy"
    np.save(series, np.sin(np.linspace(0, 9, 40)))  # shorter than 48: padded with NaN
    assert main(["predict", str(out), str(series), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["class"] in {"0", "1", "2"}
    np.save(series, np.ones(60))
    assert main(["predict", str(out), str(series)]) == 2
    assert "longer than the 48 points" in capsys.readouterr().err


@pytest.mark.parametrize("image", ["gaf", "recurrence", "line"])
@pytest.mark.parametrize("prompt", ["full", "resize-pad"])
def test_series_image_program_shapes_and_gradients(image: str, prompt: str) -> None:
    from reprogram.programs import build_program

    options = {"image": image, "prompt": prompt, "canvas_size": 40, "resolution": 16}
    program, _ = build_program("series-image", options, (1, 50), (3, 224, 224))
    x = torch.randn(3, 1, 50, generator=torch.Generator().manual_seed(0))
    x[0, 0, 30:] = float("nan")  # a shorter series
    x.requires_grad_(True)
    pixels = program(x)
    assert pixels.shape == (3, 3, 40, 40) and torch.isfinite(pixels).all()
    drawn = program.draw(x.detach())
    assert drawn.shape == (3, 1, 16, 16) and 0.0 <= float(drawn.min()) <= float(drawn.max()) <= 1
    pixels.square().sum().backward()
    grads = [p.grad for p in program.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    assert torch.isfinite(x.grad).all() and x.grad[1].abs().sum() > 0  # drawn differentiably
    # the shorter series is drawn from its valid part only: NaN padding changes nothing
    same = x.detach()[0:1, :, :30]
    assert torch.allclose(program.draw(same), drawn[0:1], atol=1e-4)
    assert torch.equal(program.embed(x.detach()), program.prompt.embed(drawn))


def test_series_image_refuses_images_and_audio_sources() -> None:
    from reprogram.programs import build_program

    with pytest.raises(ReprogramError, match="univariate time series"):
        build_program("series-image", {}, (1, 8, 8), (3, 32, 32))
    with pytest.raises(ReprogramError, match="waveform program"):
        build_program("series-image", {}, (1, 50), (16000,))
    with pytest.raises(ReprogramError, match="image must be one of"):
        build_program("series-image", {"image": "photo"}, (1, 50), (3, 32, 32))


@pytest.mark.parametrize("method", ["linear-probe", "finetune"])
def test_image_feature_baselines_refuse_series_clearly(
    tmp_path: Path, waves: str, method: str
) -> None:
    cfg = config(tmp_path, waves, method, source="tiny-random-cnn")
    with pytest.raises(ReprogramError, match="needs an image source and an image target"):
        run_baseline(cfg)
