"""Logistic regression on fixed features with the regularisation chosen honestly.

``C`` is chosen on the validation split (``select="val"``) or by stratified k-fold
cross-validation on the training split (``select="cv"``; the validation split then stays
untouched for whatever selection comes after, such as choosing an epoch).

Shared by the ``linear-probe`` / ``pixels-logreg`` baselines and by the ``linear`` mapping's
``init=probe`` warm start. Features are standardised with training statistics; the chosen
scikit-learn model is folded back into weights ``[K, D]`` and bias ``[K]`` that act on the
raw features, so a float32 ``nn.Linear`` reproduces it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch

logger = logging.getLogger(__name__)

DEFAULT_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


@dataclass
class ProbeFit:
    """The chosen model: ``weight`` ``[K, D]``, ``bias`` ``[K]``, its ``C`` and every candidate.

    ``val_accuracy`` is the chosen model's validation accuracy; ``score`` is what chose it
    (validation accuracy, or mean cross-validated accuracy with ``select="cv"``).
    """

    weight: torch.Tensor
    bias: torch.Tensor
    c: float
    val_accuracy: float
    candidates: list[dict[str, float]]
    select: str = "val"
    score: float = 0.0


def fold_logistic(
    coef: np.ndarray,
    intercept: np.ndarray,
    classes: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    num_classes: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights ``[K, D]`` and bias ``[K]`` acting on raw features of a model fit on
    ``(f - mean) / std``. Binary models (one row) become the scores ``[0, w·z + b]``; classes
    absent from training get a very low score.
    """
    if coef.shape[0] == 1 and len(classes) == 2:
        coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
        intercept = np.array([0.0, float(intercept[0])])
    w = np.zeros((num_classes, coef.shape[1]))
    b = np.full(num_classes, -1e4)
    w[classes] = coef / std
    b[classes] = intercept - (coef / std) @ mean
    return torch.from_numpy(w).float(), torch.from_numpy(b).float()


def fit_probe(
    f_train: torch.Tensor,
    y_train: torch.Tensor,
    f_val: torch.Tensor,
    y_val: torch.Tensor,
    num_classes: int,
    cs: tuple[float, ...] | list[float] = DEFAULT_CS,
    max_iter: int = 1000,
    verbose: bool = False,
    select: str = "val",
    folds: int = 5,
    seed: int = 0,
) -> ProbeFit:
    """Fit multinomial logistic regression for each ``C`` in ``cs``; keep the best one.

    Args:
        f_train: training features ``[N, D]``; y_train: labels ``[N]``.
        f_val: validation features ``[M, D]``; y_val: labels ``[M]``.
        num_classes: ``K`` (classes missing from training get a very low score).
        cs: inverse regularisation strengths; ties go to the smaller.
        select: ``"val"`` scores each ``C`` on the validation split; ``"cv"`` by stratified
            ``folds``-fold cross-validation on the training split (fewer folds when a class
            has fewer examples; seeded by ``seed``), then refits on all of it.
    """
    from sklearn.exceptions import ConvergenceWarning

    if select not in ("val", "cv"):
        raise ValueError(f"select must be 'val' or 'cv', got {select!r}")

    x = f_train.double().numpy()
    mean = x.mean(0)
    std = x.std(0)
    std[std < 1e-8] = 1.0
    z_train, z_val = (x - mean) / std, (f_val.double().numpy() - mean) / std
    yt, yv = y_train.numpy(), y_val.numpy()
    candidates: list[dict[str, float]] = []
    best = None
    present = np.bincount(yt)[np.unique(yt)]
    k = min(folds, int(present.min())) if present.size else 0
    if select == "cv" and k < 2:
        select = "val"  # a class with one example: nothing to cross-validate
    order = sorted(float(v) for v in cs)
    if not order:
        raise ValueError("cs must not be empty")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = _path(z_train, yt, order, max_iter)
        cv = _cv_accuracies(z_train, yt, order, k, seed, max_iter) if select == "cv" else None
    for i, (c, fitted) in enumerate(zip(order, fits, strict=True)):
        acc = float((_predict(z_val, *fitted) == yv).mean())
        score = acc if cv is None else cv[i]
        candidates.append({"C": c, "val_accuracy": acc, "score": score})
        if verbose:
            logger.info("C=%g  %s acc %.4f", c, select, score)
    # the first of the best scores: ties go to the smaller C
    i = max(range(len(order)), key=lambda j: (candidates[j]["score"], -j))
    w, b = fold_logistic(*fits[i], mean, std, num_classes)
    best = candidates[i]
    return ProbeFit(w, b, order[i], best["val_accuracy"], candidates, select, best["score"])


def _predict(
    z: np.ndarray, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray
) -> np.ndarray:
    """Labels ``[N]`` of a fitted logistic model (``coef`` ``[K or 1, D]``) on ``z`` ``[N, D]``."""
    scores = z @ coef.T + intercept
    if coef.shape[0] == 1:  # binary: one score, positive means the second class
        return classes[(scores[:, 0] > 0).astype(int)]
    return classes[scores.argmax(1)]


def _path(
    z: np.ndarray, y: np.ndarray, cs: list[float], max_iter: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(coef, intercept, classes)`` of ``LogisticRegression(C=c)`` for each ``c`` in ``cs``.

    ``cs`` ascending; each fit starts from the previous solution (a warm-started
    regularisation path), which converges in a fraction of the iterations of cold starts.
    """
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=max_iter, warm_start=True)
    out = []
    for c in cs:
        clf.set_params(C=c).fit(z, y)
        out.append((clf.coef_.copy(), clf.intercept_.copy(), clf.classes_.copy()))
    return out


def _cv_accuracies(
    z: np.ndarray, y: np.ndarray, cs: list[float], k: int, seed: int, max_iter: int
) -> list[float]:
    """Mean accuracy of ``LogisticRegression(C=c)`` per ``c`` over stratified ``k``-fold splits."""
    from sklearn.model_selection import StratifiedKFold

    totals = np.zeros(len(cs))
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(z, y):
        for i, fitted in enumerate(_path(z[tr], y[tr], cs, max_iter)):
            totals[i] += float((_predict(z[te], *fitted) == y[te]).mean())
    return [float(t / k) for t in totals]
