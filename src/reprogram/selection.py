"""``--select kfold:K`` and ``--select refit``: choose without the test set, then refit on all.

With few training examples a held-out validation split is both small and costly: 20% of six
UCR series is one series per class, whose accuracy moves in steps of 50%, and those examples
are not trained on. K-fold selection instead:

1. deals the (few-shot) training examples into ``K`` class-stratified folds
   (:func:`~reprogram.data.splits.stratified_folds`; a regression target's are stratified by
   value, :func:`~reprogram.data.splits.value_folds`);
2. trains ``K`` selection-only runs under ``OUT/folds/k``, each validating on fold ``k`` and
   training on the rest; none of them reads the test split;
3. averages their validation curves: for gradient training the epoch with the best mean
   validation accuracy (ties: lower mean validation loss, then the earlier epoch; epoch 0 is
   the warm start where a mapping has one; a regression target: the lowest mean validation
   MSE); for fixed-feature baselines the penalty with the
   best mean validation accuracy (ties: the stronger penalty);
4. trains once more on every training example with that choice fixed (the chosen number of
   epochs, or a one-value penalty grid) and scores the test split once.

``--select refit`` is the one-fold case: the usual held-out validation split (``--val-fraction``
of each class) is the only fold, so one selection run trains on the rest and validates there,
and the final run trains on every training example for the chosen number of epochs (or with the
chosen penalty). It costs 2 trainings and keeps holdout selection's split, but nothing stays
untrained on.

A ``:1se`` suffix (``refit:1se``, ``kfold:5:1se``) changes the rule that reads the curve to the
one-standard-error rule: of the choices whose validation accuracy is within one binomial
standard error ``sqrt(p(1 - p) / n)`` of the best (``p`` the best accuracy, ``n`` the validation
examples behind it), take the simplest: the earliest epoch (epoch 0 being the untrained
program where a mapping provides one), or the strongest penalty. On a few dozen validation
examples most differences between epochs are noise; this rule only leaves the simpler model
when validation says so clearly.

``metrics.json`` of the final run reports the cross-validated accuracy and loss as its
``val_accuracy``/``val_loss``, keeps the fold curves under ``kfold`` and the folds' training
time under ``selection_seconds`` (``train_seconds`` is the final run's alone). The runs resume:
finished folds are kept, an interrupted fold or final run continues from its checkpoint.
Costs ``K + 1`` trainings. A finished fold keeps its ``config.json`` and ``metrics.json`` but
not its weights: a fold's model saw only part of the data and is never used again, and a
fine-tuned source would otherwise leave ``K`` full copies of itself on disk.

A gradient run with ``--epochs 0`` (the untrained program, e.g. a ridge head fitted on
frozen features) has one candidate, so it runs no folds: the final run alone, on every
training example (see :func:`nothing_to_choose`). Its ``val_accuracy`` is the ridge head's
leave-one-out accuracy on those examples (``head=ridge``), else ``None``.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .artifact import CONFIG, METRICS, PROGRAM, read_json, write_json
from .checkpoint import CHECKPOINT_NAME
from .config import ONE_SE, REFIT, changed_settings, is_refit, parse_select, selection_rule
from .data import Split, TargetData, load_target
from .data.splits import few_shot_pool, prepare_splits, stratified_folds, value_folds
from .errors import DataError, ReprogramError
from .train import check_out

FOLDS_DIR = "folds"
STATE = "kfold.json"


def unfinished(out: Path) -> bool:
    """Whether ``out`` holds an interrupted run, k-fold (folds started) or plain (checkpoint)."""
    done = (out / METRICS).exists()
    return not done and ((out / CHECKPOINT_NAME).exists() or (out / FOLDS_DIR).exists())


def _prepare(config: Any, reads_source: bool = True) -> Path:
    """The k-fold twin of :func:`reprogram.train.prepare_out`: same rules, folds included
    (``config.source`` left out of the recorded settings unless ``reads_source``)."""
    out = check_out(config, unfinished(Path(config.out)))
    signature = config.signature()
    if not reads_source:
        signature.pop("source", None)
    ours = _jsonable(signature)
    if config.resume:
        recorded = read_json(out / STATE, "the k-fold state") if (out / STATE).exists() else {}
        if recorded.get("signature") not in (None, ours):
            raise ReprogramError(
                f"--resume: the k-fold run in {out} was started with different settings "
                f"({changed_settings(recorded['signature'], ours)}). Resume with the same "
                "settings, or start a new --out."
            )
        return out
    if out.exists():
        shutil.rmtree(out / FOLDS_DIR, ignore_errors=True)
        for name in (CHECKPOINT_NAME, METRICS, STATE):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / STATE, {"signature": ours})
    return out


def _check_pool(out: Path, pool: Split, resume: bool) -> None:
    """Record the few-shot pool's digest in the k-fold state; on ``--resume`` refuse a pool
    that changed since (a data file edited at the same path): finished folds would mix
    scores of the old data with new ones."""
    state = read_json(out / STATE, "the k-fold state") if (out / STATE).exists() else {}
    digest = pool.digest()
    if resume and state.get("pool") not in (None, digest):
        raise ReprogramError(
            f"--resume: the training examples differ from those the k-fold run in {out} "
            "started on (the data file changed since?), so its finished folds would not fit "
            "them. Restore the data, or start a new --out."
        )
    write_json(out / STATE, {**state, "pool": digest})


def selection_seconds(out: Path) -> float:
    """Training seconds spent by the selection runs under ``out/folds`` (0 for none).

    A k-fold or refit run's own ``train_seconds`` is the final run's; what choosing cost is
    this (the folds' ``train_seconds`` summed), so a run's full price is the two added.
    """
    total = 0.0
    for path in sorted(Path(out).glob(f"{FOLDS_DIR}/*/{METRICS}")):
        total += float(read_json(path, "a fold's metrics").get("train_seconds", 0.0))
    return total


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    import json

    return json.loads(json.dumps(value, default=str))


def _run_into(config: Any, out: Path, **changes: Any) -> Any:
    """A copy of ``config`` writing to ``out``, resuming there when a checkpoint is waiting."""
    resume = (out / CHECKPOINT_NAME).exists()
    return dataclasses.replace(config, out=str(out), resume=resume, overwrite=not resume, **changes)


def kfold_run(
    config: Any,
    runner: Callable[..., Any],
    *,
    source: Any = None,
    target: TargetData | None = None,
    fixed_options: Callable[[Any, dict[str, float]], Any] | None = None,
    callbacks: list[Any] | None = None,
    chooses: bool = True,
    reads_source: bool = True,
) -> Any:
    """Run ``runner`` (``fit`` or ``run_baseline``) under k-fold or refit selection.

    See the module doc.

    Args:
        config: the run's settings, ``config.select`` ``"kfold:K"`` or ``"refit"``.
        runner: called as ``runner(cfg, source=..., target=..., callbacks=...)`` for each
            fold and for the final run; returns a ``FitResult``.
        source: passed to every run (build it once, before calling).
        target: as for ``fit``; loaded once here when not given.
        fixed_options: for fixed-feature baselines, ``(config, chosen) → config`` with the
            penalty grid reduced to the chosen value.
        callbacks: training hooks given to every run (each fold and the final one).
        chooses: False for a method with fixed settings (a random forest): validation has
            nothing to choose, so no selection runs; the final run fits every training example.
        reads_source: False for a baseline that reads no source (a forest on composition):
            ``config.source`` is then left out of the state recorded for ``--resume``, as
            the runs' own config.json leave it out.
    Returns:
        the final run's ``FitResult`` (its metrics carry the ``kfold`` record).
    """
    k = config.folds
    out = _prepare(config, reads_source)
    data = target if target is not None else load_target(config.target)
    name = data.name if target is not None else config.target
    _check_task(config, data)
    fixed = nothing_to_choose(config) or not chooses
    try:
        pool = prepare_splits(
            data, shots=config.shots, val_fraction=config.val_fraction, seed=config.seed
        )
    except DataError:
        if not fixed and (is_refit(config.select) or data.task == "regression"):
            raise
        # nothing to choose holds nothing out, so classes too small to give one example to
        # validation are fine: train on the few-shot pool as drawn; k-fold has no validation
        # carve either, so its own rule (two examples a class) decides, with its own message
        train = few_shot_pool(data, shots=config.shots, seed=config.seed)
        folds = [] if fixed else stratified_folds(train.y, k, config.seed, data.class_names)
    else:
        train = _merge(pool.train, pool.val)  # the few-shot pool: nothing held out
        if is_refit(config.select):  # one fold: the held-out validation split itself
            import torch

            folds = [torch.arange(len(pool.train), len(train))]
        elif data.task == "regression":
            folds = value_folds(train.y, k, config.seed)
        else:
            folds = stratified_folds(train.y, k, config.seed, pool.class_names)
    _check_pool(out, train, config.resume)
    fold_metrics = []
    extra = {"diagnostics": False} if hasattr(config, "diagnostics") else {}
    if fixed:  # --epochs 0 (the folds could only pick epoch 0), or fixed settings
        folds = []
    for i, held in enumerate(folds):
        directory = out / FOLDS_DIR / str(i)
        if (directory / METRICS).exists():
            fold_metrics.append(read_json(directory / METRICS, "a fold's metrics"))
        else:
            keep = _complement(len(train), held)
            fold_data = _target(data, name, train.subset(keep), train.subset(held))
            cfg = _run_into(
                config,
                directory,
                select="holdout",
                shots=None,
                score_test=False,
                plots=False,
                progress=False,
                **extra,
            )
            if config.progress:
                print(f"{_name(config)}: fold {i + 1}/{k} ({len(held)} held out)", flush=True)
            fold_metrics.append(
                runner(cfg, source=source, target=fold_data, callbacks=callbacks).metrics
            )
        (directory / PROGRAM).unlink(missing_ok=True)  # only its scores are read again
    choice = (
        choose(fold_metrics, rule=selection_rule(config.select), task=data.task)
        if folds
        else _UNTRAINED
        if chooses
        else _FIXED
    )
    final = _run_into(config, out, select="holdout", shots=None)
    if config.progress:
        why = "--epochs 0" if chooses else "fixed settings"
        chose = f"chose {_describe(choice, k)}" if folds else f"has nothing to choose ({why})"
        print(f"{_name(config)} {chose}; training on all {len(train)}", flush=True)
    if "epoch" in choice:
        final = dataclasses.replace(
            final, select_epoch=choice["epoch"], epochs=max(choice["epoch"], 1), patience=None
        )
        if hasattr(final, "score_val"):  # its "validation" split is the training data: skip it
            final = dataclasses.replace(final, score_val=False)
    elif chooses:  # a penalty (fixed settings keep their own: nothing to fix)
        if fixed_options is None:
            raise ReprogramError(f"{_name(config)}: this method reports no choice to fix.")
        final = fixed_options(final, choice["penalty"])
    result = runner(
        final, source=source, target=_target(data, name, train, train), callbacks=callbacks
    )
    metrics = dict(result.metrics)
    nothing = (
        "nothing to choose (--epochs 0: the untrained program; the head fitted on all training "
        "examples); no selection runs"
        if chooses
        else "nothing to choose (fixed settings, fitted on all training examples); no "
        "selection runs"
    )
    if not folds:  # nothing held out: the head's leave-one-out accuracy, where it has one
        choice = {**choice, "val_accuracy": _loo_accuracy(metrics)}
    if data.task == "regression" and choice.get("val_loss") is not None:
        metrics["val_rmse"] = math.sqrt(choice["val_loss"])  # the folds' mean squared error
    metrics.update(
        val_accuracy=choice["val_accuracy"],
        val_loss=choice.get("val_loss"),
        selection=(
            f"{_chooser(config, folds)} chose {_describe(choice, k)}; refit on all training "
            "examples; test once"
            if folds
            else nothing
            + (
                "; val_accuracy is the head's leave-one-out accuracy on them"
                if choice["val_accuracy"] is not None
                else ""
            )
            + "; test once"
        ),
        splits={**metrics["splits"], "val": sum(len(f) for f in folds)},
        selection_seconds=round(selection_seconds(out), 3),
        kfold={
            "folds": len(folds),
            "fold_sizes": [len(f) for f in folds],
            "choice": choice,
            "curve": choice["curve"],
            "select": config.select,
        },
    )
    write_json(out / METRICS, metrics)
    artifact = read_json(out / CONFIG, "the config")
    artifact["target"] = {**artifact["target"], "shots": config.shots, "select": config.select}
    write_json(out / CONFIG, artifact)
    result.metrics, result.config = metrics, artifact
    return result


def _check_task(config: Any, data: TargetData) -> None:
    """Refuse the selections a target's kind cannot take, saying what to use instead."""
    if data.forecast is not None:
        why = (
            "refit is not built for forecasting targets yet"
            if is_refit(config.select)
            else "k-fold deals training windows into folds at random, so a forecast would be "
            "chosen on windows older than ones it trained on (and that overlap them)"
        )
        raise ReprogramError(
            f"--select {config.select}: {why}; a forecasting target keeps its chronological "
            "validation split. Use --select holdout (the default)."
        )
    if data.task == "regression" and selection_rule(config.select) == ONE_SE:
        raise ReprogramError(
            f"--select {config.select}: the one-standard-error rule reads a binomial error of "
            "an accuracy, which a regression target does not have; use --select "
            f"{config.select.rsplit(':', 1)[0]} (the lowest mean validation MSE chooses)."
        )
    if data.task not in ("classification", "regression"):
        raise ReprogramError(
            f"--select {config.select} chooses over folds of a classification or regression "
            f"target; this is a {data.task} target. Use --select holdout (the default)."
        )


# The choice when the method trains nothing: its start, with no held-out estimate of it.
_UNTRAINED: dict[str, Any] = {"epoch": 0, "val_accuracy": None, "val_loss": None, "curve": []}
_FIXED: dict[str, Any] = {"val_accuracy": None, "val_loss": None, "curve": []}


def _loo_accuracy(metrics: dict[str, Any]) -> float | None:
    """The ridge head's leave-one-out accuracy at epoch 0 of a final run, if it has one."""
    fits = metrics.get("callbacks", {}).get("ridge_head", {}).get("fits", [])
    return next((f.get("loo_accuracy") for f in fits if f.get("epoch") == 0), None)


def nothing_to_choose(config: Any) -> bool:
    """Whether ``config`` is a gradient run with ``epochs == 0``: its only candidate is the
    start (a mapping fitted before training), so selection runs would choose epoch 0 whatever
    they measured. Such a run skips them and goes straight to the final run on all training
    examples; its ``val_accuracy`` is the ridge head's leave-one-out accuracy, or ``None``."""
    return getattr(config, "epochs", None) == 0 and hasattr(config, "select_epoch")


def _name(config: Any) -> str:
    return "refit selection" if is_refit(config.select) else "k-fold selection"


def _chooser(config: Any, folds: list[Any]) -> str:
    """Who made the choice, for ``metrics.json``'s ``selection``."""
    rule = " (one-standard-error rule)" if selection_rule(config.select) == ONE_SE else ""
    if is_refit(config.select):
        return f"the held-out {len(folds[0])} validation examples{rule}"
    return f"{len(folds)}-fold cross-validation on the training examples{rule}"


def _merge(a: Split, b: Split) -> Split:
    import torch

    return Split(torch.cat([a.x, b.x]), torch.cat([a.y, b.y]))


def _complement(n: int, held: Any) -> Any:
    import torch

    mask = torch.ones(n, dtype=torch.bool)
    mask[held] = False
    return torch.nonzero(mask).flatten()


def _target(data: TargetData, name: str, train: Split, val: Split) -> TargetData:
    # every other field as loaded (the portable name of a path target included)
    return dataclasses.replace(
        data, name=name, train=train, val=val, class_names=list(data.class_names),
        info=dict(data.info),
    )  # fmt: skip


def choose(
    fold_metrics: list[dict[str, Any]], rule: str = "best", task: str = "classification"
) -> dict[str, Any]:
    """The choice the folds agree on best: an epoch (gradient runs) or a penalty.

    Args:
        fold_metrics: each fold's ``metrics.json`` (``history`` per epoch, or ``candidates``
            per penalty with ``val_accuracy``; ``splits.val`` its validation size).
        rule: ``"best"``: the best mean validation accuracy (epochs: ties to lower mean loss,
            then the earlier epoch; penalties: ties to the stronger); ``"1se"``: the earliest
            epoch or strongest penalty within one standard error of that best.
        task: ``"regression"`` chooses the epoch of the lowest mean validation loss (the mean
            squared error; ties to the earlier epoch), with the ``"best"`` rule only.
    Returns:
        ``{"epoch": E}`` or ``{"penalty": {"alpha"|"C": v}}``, plus the mean ``val_accuracy``
        (and ``val_loss``) there and the mean ``curve`` it was read from.
    """
    if rule not in ("best", ONE_SE):
        raise ValueError(f"rule must be 'best' or '1se', got {rule!r}")
    if task == "regression":
        return _lowest_loss(fold_metrics)
    n_val = sum(int(m.get("splits", {}).get("val", 0)) for m in fold_metrics)
    curve = _mean_curve(fold_metrics, "val_accuracy")
    if curve is not None:  # gradient runs (an --epochs 0 run validates its start only)
        best = max(curve, key=lambda c: (c["val_accuracy"], -c["val_loss"], -c["epoch"]))
        if rule == ONE_SE:
            floor = best["val_accuracy"] - standard_error(best["val_accuracy"], n_val)
            best = min((c for c in curve if c["val_accuracy"] >= floor), key=lambda c: c["epoch"])
        return {**best, "curve": curve}
    candidates = [m.get("candidates") or [] for m in fold_metrics]
    if not all(candidates):
        raise ReprogramError("k-fold selection: a fold reported neither epochs nor candidates.")
    key = "alpha" if "alpha" in candidates[0][0] else "C"
    values = sorted({c[key] for c in candidates[0]})
    curve = []
    for v in values:
        accs = [next(c["val_accuracy"] for c in cs if c[key] == v) for cs in candidates]
        curve.append({key: v, "val_accuracy": sum(accs) / len(accs)})
    stronger = (lambda c: c[key]) if key == "alpha" else (lambda c: -c[key])
    best = max(curve, key=lambda c: (c["val_accuracy"], stronger(c)))
    if rule == ONE_SE:
        floor = best["val_accuracy"] - standard_error(best["val_accuracy"], n_val)
        best = max((c for c in curve if c["val_accuracy"] >= floor), key=stronger)
    return {"penalty": {key: best[key]}, "val_accuracy": best["val_accuracy"], "curve": curve}


def _mean_curve(
    fold_metrics: list[dict[str, Any]], scored: str
) -> list[dict[str, Any]] | None:
    """Per epoch every fold validated (``scored`` not None in its ``history``), the folds'
    mean ``val_accuracy`` (None where the folds have none) and ``val_loss``; None when a fold
    has no such epoch (it trained no epochs: a fixed-feature method)."""
    histories = [
        [r for r in m.get("history", []) if r.get(scored) is not None] for m in fold_metrics
    ]
    if not all(histories):
        return None
    common = set.intersection(*({r["epoch"] for r in h} for h in histories))
    curve = []
    for epoch in sorted(common):
        rows = [next(r for r in h if r["epoch"] == epoch) for h in histories]
        accuracies = [r.get("val_accuracy") for r in rows]
        curve.append(
            {
                "epoch": epoch,
                "val_accuracy": (
                    None if None in accuracies else sum(accuracies) / len(accuracies)
                ),
                "val_loss": sum(r["val_loss"] for r in rows) / len(rows),
            }
        )
    return curve


def _lowest_loss(fold_metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch of the lowest mean validation loss over the folds (a regression target)."""
    curve = _mean_curve(fold_metrics, "val_loss")
    if curve is None:
        raise ReprogramError(
            "k-fold selection on a regression target chooses an epoch of gradient training; a "
            "fold reported no validation loss per epoch (fixed-feature methods such as the "
            "forests have nothing to choose: use --select holdout)."
        )
    best = min(curve, key=lambda c: (c["val_loss"], c["epoch"]))
    return {**best, "curve": curve}


def standard_error(accuracy: float, n: int) -> float:
    """Binomial standard error ``sqrt(p(1 - p) / n)`` of an accuracy ``p`` on ``n`` examples
    (0 when ``n`` is unknown)."""
    if n <= 0:
        return 0.0
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / n)


def _describe(choice: dict[str, Any], folds: int) -> str:
    mean = "mean " if folds > 1 else ""
    if choice["val_accuracy"] is None:  # a regression target: chosen on the loss (MSE)
        acc = f"({mean}val MSE {choice['val_loss']:.4f})"
    else:
        acc = f"({mean}val acc {choice['val_accuracy']:.4f})"
    if "epoch" in choice:
        return f"epoch {choice['epoch']} {acc}"
    ((key, value),) = choice["penalty"].items()
    return f"{key} = {value:g} {acc}"


__all__ = [
    "ONE_SE",
    "REFIT",
    "choose",
    "is_refit",
    "kfold_run",
    "nothing_to_choose",
    "parse_select",
    "selection_rule",
    "standard_error",
    "unfinished",
]
