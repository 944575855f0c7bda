"""The ``linear`` mapping's ``head=ridge``: a closed-form layer refitted at every program state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import Crash, CrashAt

from reprogram import FitConfig, fit, load_artifact
from reprogram.data import load_target
from reprogram.data.splits import prepare_splits
from reprogram.errors import ReprogramError
from reprogram.ridge import fit_ridge_loo


def _config(tmp_path: Path, name: str = "run", **kw: object) -> FitConfig:
    base = dict(
        source="features:tiny-random-cnn",
        target="digits",
        program="full",
        mapping="linear",
        mapping_options={"head": "ridge"},
        lr=0.01,
        epochs=2,
        shots=20,
        seed=0,
        out=str(tmp_path / name),
        progress=False,
        plots=False,
        diagnostics=False,
    )
    base.update(kw)
    return FitConfig(**base)  # type: ignore[arg-type]


def test_ridge_fit_matches_scikit_learn_on_raw_features_and_brute_force_loo() -> None:
    from sklearn.linear_model import Ridge

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(30, 12, generator=gen) * torch.linspace(0.1, 5.0, 12) + 3.0
    y = torch.randint(0, 3, (30,), generator=gen)
    x[:, 0] += 2.0 * y
    fit = fit_ridge_loo(x, y, num_classes=4, alphas=[0.1, 1.0, 10.0, 100.0])
    z = ((x - x.mean(0)) / x.std(0, unbiased=False)).double().numpy()
    targets = np.where(y.numpy()[:, None] == np.arange(3)[None, :], 1.0, -1.0)
    errors = {}  # leave-one-out squared error per penalty, by refitting without each example
    for alpha in (0.1, 1.0, 10.0, 100.0):
        total = 0.0
        for i in range(len(z)):
            keep = np.arange(len(z)) != i
            model = Ridge(alpha=alpha).fit(z[keep], targets[keep])
            total += float(((model.predict(z[i : i + 1]) - targets[i]) ** 2).mean())
        errors[alpha] = total / len(z)
    assert fit.alpha == min(errors, key=errors.get)
    assert fit.loo_error == pytest.approx(errors[fit.alpha], rel=1e-6)
    full = Ridge(alpha=fit.alpha).fit(z, targets)
    scores = x @ fit.weight.T + fit.bias  # the folded layer acts on raw features
    assert torch.allclose(scores[:, :3], torch.from_numpy(full.predict(z)).float(), atol=1e-4)
    assert bool((scores[:, 3] < -1e3).all())  # class 3 never seen: never predicted


@pytest.mark.parametrize(("n", "d", "k"), [(24, 40, 3), (40, 6, 3), (30, 8, 2)])
def test_loo_accuracy_is_the_brute_force_leave_one_out(n: int, d: int, k: int) -> None:
    """Dual (N <= D) and primal forms, many classes and two: refit without each example."""
    from sklearn.linear_model import RidgeClassifier

    from reprogram.ridge import loo_accuracy

    rng = np.random.default_rng(n + d)
    y = np.arange(n) % k
    z = rng.normal(size=(n, d)) + 0.8 * y[:, None] * (np.arange(d) < 2)
    for alpha in (0.01, 1.0, 30.0):
        hits = 0
        for i in range(n):
            keep = np.arange(n) != i
            model = RidgeClassifier(alpha=alpha).fit(z[keep], y[keep])
            hits += int(model.predict(z[i : i + 1])[0] == y[i])
        assert loo_accuracy(z, y, alpha) == pytest.approx(hits / n), alpha
    fit = fit_ridge_loo(torch.from_numpy(z), torch.from_numpy(y), num_classes=k, accuracy=True)
    assert fit.loo_accuracy is not None and 0.0 < fit.loo_accuracy <= 1.0
    assert fit_ridge_loo(torch.from_numpy(z), torch.from_numpy(y), k).loo_accuracy is None


@pytest.mark.parametrize(("n", "d", "k"), [(24, 40, 3), (40, 6, 2), (30, 12, 4)])
def test_ridge_path_is_fit_ridge_loo_at_every_penalty(n: int, d: int, k: int) -> None:
    """One eigensolve gives, per penalty, what fit_ridge_loo and loo_accuracy give alone;
    Grams of column blocks add up to the Gram of all columns."""
    from reprogram.ridge import loo_accuracy, ridge_path, standardised_grams

    rng = np.random.default_rng(n * d + k)
    y = rng.permutation(np.arange(n) % k)
    scale = np.linspace(0.2, 4.0, d)
    x = rng.normal(size=(n, d)) * scale + 2.0 + 0.9 * y[:, None] * (np.arange(d) < 3)
    x_test = rng.normal(size=(15, d)) * scale + 2.0
    alphas = (0.01, 0.3, 10.0, 300.0)
    path = ridge_path(*standardised_grams(x, x_test), y, alphas=alphas)
    assert path.alphas.tolist() == sorted(alphas) and path.test_pred.shape == (4, 15)
    z = (x - x.mean(0)) / x.std(0)
    for i, alpha in enumerate(path.alphas):
        one = fit_ridge_loo(torch.from_numpy(x), torch.from_numpy(y), k, alphas=(alpha,))
        assert path.loo_error[i] == pytest.approx(one.loo_error, rel=1e-8)
        assert path.loo_accuracy[i] == pytest.approx(loo_accuracy(z, y, alpha))
        scores = torch.from_numpy(x_test).float() @ one.weight.T + one.bias
        assert np.array_equal(path.test_pred[i], scores.argmax(1).numpy())
    best = fit_ridge_loo(torch.from_numpy(x), torch.from_numpy(y), k, alphas=alphas)
    assert path.alphas[path.chosen] == best.alpha
    a, b = standardised_grams(x[:, :2], x_test[:, :2]), standardised_grams(x[:, 2:], x_test[:, 2:])
    whole = standardised_grams(x, x_test)
    assert all(np.allclose(p + q, w) for p, q, w in zip(a, b, whole, strict=True))
    with pytest.raises(ValueError, match="two classes"):
        ridge_path(*whole, np.zeros(n, dtype=int))


def test_ridge_fit_of_two_classes_and_of_one() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(20, 5, generator=gen)
    y = (x[:, 0] > 0).long()
    fit = fit_ridge_loo(x, y, num_classes=2)
    assert fit.weight.shape == (2, 5) and float(fit.weight[0].abs().sum()) == 0.0
    assert float(((x @ fit.weight.T + fit.bias).argmax(1) == y).float().mean()) >= 0.9
    single = fit_ridge_loo(x, torch.ones(20, dtype=torch.long), num_classes=3)
    assert torch.equal((x @ single.weight.T + single.bias).argmax(1), torch.ones(20).long())


def test_head_is_the_ridge_fit_on_training_outputs_at_the_chosen_program(tmp_path: Path) -> None:
    result = fit(_config(tmp_path))
    model, m = result.model, result.metrics
    assert [r["epoch"] for r in m["history"]] == [0, 1, 2]  # the untrained program: epoch 0
    fits = m["callbacks"]["ridge_head"]["fits"]
    assert [f["epoch"] for f in fits] == [0, 1, 2]
    assert not model.mapping.linear.weight.requires_grad
    assert m["trainable_parameters"] == sum(
        p.numel() for p in (*model.program.parameters(), *model.mapping.parameters())
    )
    splits = prepare_splits(load_target("digits"), shots=20, val_fraction=0.2, seed=0)
    with torch.no_grad():
        outputs = model.source_logits(splits.train.x)
    again = fit_ridge_loo(outputs, splits.train.y, splits.num_classes)
    chosen = next(f for f in fits if f["epoch"] == m["best_epoch"])
    assert again.alpha == chosen["alpha"]
    assert torch.allclose(model.mapping.linear.weight, again.weight, atol=1e-4)
    assert torch.allclose(model.mapping.linear.bias, again.bias, atol=1e-4)
    if m["best_epoch"] > 0:  # the program trained through the frozen layer
        assert torch.count_nonzero(model.program.theta) > 0
    reloaded, _ = load_artifact(tmp_path / "run")
    x = torch.rand(3, *splits.input_shape)
    with torch.no_grad():
        assert torch.allclose(reloaded(x), model(x))


def test_ridge_head_resumes_to_the_same_run(tmp_path: Path) -> None:
    straight = fit(_config(tmp_path, "straight", epochs=3))
    with pytest.raises(Crash):
        fit(_config(tmp_path, "resumed", epochs=3), callbacks=[CrashAt(2)])
    resumed = fit(_config(tmp_path, "resumed", epochs=3, resume=True))
    assert straight.metrics["test_accuracy"] == resumed.metrics["test_accuracy"]
    assert [r["val_loss"] for r in straight.metrics["history"]] == [
        r["val_loss"] for r in resumed.metrics["history"]
    ]
    assert straight.metrics["callbacks"] == resumed.metrics["callbacks"]


def test_ridge_head_refuses_a_probe_start(tmp_path: Path) -> None:
    with pytest.raises(ReprogramError, match="drop init=probe"):
        fit(_config(tmp_path, mapping_options={"head": "ridge", "init": "probe"}))
    with pytest.raises(ReprogramError, match="head must be sgd or ridge"):
        fit(_config(tmp_path, mapping_options={"head": "lasso"}))


def test_zero_epochs_keep_the_fitted_head_on_the_untrained_program(tmp_path: Path) -> None:
    held = fit(_config(tmp_path, "held", epochs=0))
    m = held.metrics
    assert m["epochs"] == 0 and m["best_epoch"] == 0 and [r["epoch"] for r in m["history"]] == [0]
    assert torch.count_nonzero(held.model.program.theta) == 0  # nothing trained the program
    assert m["test_accuracy"] is not None
    assert m["train_seconds"] > 0  # fitting the head before any epoch is training time
    refit = fit(_config(tmp_path, "refit", epochs=0, select="refit:1se")).metrics
    assert refit["kfold"]["choice"]["epoch"] == 0 and refit["splits"]["train"] == 200
    assert refit["test_accuracy"] is not None
    assert refit["train_seconds"] > 0  # one candidate: no selection runs, nothing held out
    assert refit["selection_seconds"] == 0.0 and refit["splits"]["val"] == 0
    assert 0.0 < refit["val_accuracy"] <= 1.0  # the head's leave-one-out accuracy


def test_zero_epochs_refuse_a_method_with_nothing_fitted_to_keep(tmp_path: Path) -> None:
    with pytest.raises(ReprogramError, match="--epochs 0 trains nothing"):
        fit(_config(tmp_path, epochs=0, mapping_options={"head": "sgd"}))
    with pytest.raises(ReprogramError, match="at least 0"):
        fit(_config(tmp_path, epochs=-1))
