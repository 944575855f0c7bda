"""A ridge classifier fitted in closed form, its penalty chosen by leave-one-out on training.

Used by the ``linear`` mapping's ``head=ridge``: after every epoch the mapping is refitted on
the training split's source outputs at the current program, so the validation split stays
free to choose the epoch. One-vs-rest regression on ±1 targets (one score for two classes),
features standardised with training statistics, the intercept unpenalised; the penalty with
the lowest leave-one-out squared error wins (computed exactly from one eigendecomposition,
scikit-learn's ``RidgeClassifierCV``). The chosen model is folded back into weights ``[K, D]``
and bias ``[K]`` that act on the raw features, so a float32 ``nn.Linear`` reproduces it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .probe import fold_logistic

# The grid MiniRocket's ridge classifier uses in aeon and in the paper (10^-3 … 10^3, 10 values).
# A grid up to 10^5 let the leave-one-out squared error pick penalties that shrink weak binary
# sets to their majority class (benchmarks/results/bench_ucr/sonify_ridge_head_wide: Herring).
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 10))


@dataclass
class RidgeFit:
    """The chosen model: ``weight`` ``[K, D]``, ``bias`` ``[K]``, its ``alpha``, LOO error,
    and (when asked for) its leave-one-out accuracy on the training examples."""

    weight: torch.Tensor
    bias: torch.Tensor
    alpha: float
    loo_error: float
    loo_accuracy: float | None = None


def fit_ridge_loo(
    f_train: torch.Tensor,
    y_train: torch.Tensor,
    num_classes: int,
    alphas: tuple[float, ...] | list[float] = DEFAULT_ALPHAS,
    accuracy: bool = False,
) -> RidgeFit:
    """Fit a ridge classifier on features ``[N, D]`` and labels ``[N]``; penalty by LOO.

    Classes missing from ``y_train`` get a very low score. With a single class present every
    input gets that class. ``accuracy=True`` also computes the chosen model's leave-one-out
    accuracy (:func:`loo_accuracy`; one more ``min(N, D)``-sized solve).
    """
    from sklearn.linear_model import RidgeClassifierCV

    if len(f_train) != len(y_train):
        raise ValueError(f"{len(f_train)} feature rows but {len(y_train)} labels")
    if not alphas:
        raise ValueError("alphas must not be empty")
    x = f_train.double().numpy()
    y = y_train.numpy()
    mean, std = _scale(x)
    classes = np.unique(y)
    if len(classes) < 2:  # nothing to separate: a constant answer
        w = torch.zeros(num_classes, x.shape[1])
        b = torch.full((num_classes,), -1e4)
        b[int(classes[0])] = 0.0
        return RidgeFit(w, b, float(max(alphas)), 0.0, 1.0 if accuracy else None)
    z = (x - mean) / std
    clf = RidgeClassifierCV(alphas=sorted(float(a) for a in alphas))
    clf.fit(z, y)
    coef = np.atleast_2d(clf.coef_)
    intercept = np.atleast_1d(clf.intercept_)
    w, b = fold_logistic(coef, intercept, clf.classes_, mean, std, num_classes)
    acc = loo_accuracy(z, y, float(clf.alpha_)) if accuracy else None
    return RidgeFit(w, b, float(clf.alpha_), float(-clf.best_score_), acc)


def loo_accuracy(z: np.ndarray, y: np.ndarray, alpha: float) -> float:
    """Leave-one-out accuracy of a ridge classifier with penalty ``alpha`` on ``z`` ``[N, D]``.

    Exact, from one solve: the classifier regresses ±1 class indicators (one column for two
    classes, as ``RidgeClassifier``) with an unpenalised intercept, so example ``i``'s
    prediction without it is ``y_i - r_i / (1 - h_i)``, ``r`` the residual and ``h`` the hat
    matrix's diagonal (intercept included). Solved in the ``N × N`` (dual) or ``D × D``
    (primal) space, whichever is smaller. Labels ``y`` ``[N]`` with at least two classes.
    """
    _classes, index, targets = _targets(y)
    n = len(y)
    zc = z - z.mean(0)
    yc = targets - targets.mean(0)
    if n <= z.shape[1]:  # dual: A = Zc Zcᵀ + αI; residual α A⁻¹ yc, 1 - h = α diag(A⁻¹) - 1/n
        inv = np.linalg.inv(zc @ zc.T + alpha * np.eye(n))
        residual = alpha * (inv @ yc)
        leverage_left = alpha * np.diag(inv) - 1.0 / n
    else:  # primal: M = Zcᵀ Zc + αI; fitted Zc M⁻¹ Zcᵀ yc, h = 1/n + diag(Zc M⁻¹ Zcᵀ)
        inv = np.linalg.inv(zc.T @ zc + alpha * np.eye(z.shape[1]))
        proj = zc @ inv
        residual = yc - proj @ (zc.T @ yc)
        leverage_left = 1.0 - 1.0 / n - np.einsum("ij,ij->i", proj, zc)
    held_out = targets - residual / np.maximum(leverage_left, 1e-12)[:, None]
    return float((_labels(held_out) == index).mean())


def _scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training mean and standard deviation ``[D]`` of ``x`` ``[N, D]`` (constant columns: 1)."""
    mean, std = x.mean(0), x.std(0)
    std[std < 1e-8] = 1.0
    return mean, std


def _targets(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(classes, index [N], targets [N, T])``: ±1 class indicators as ``RidgeClassifier``
    regresses them, one column (+1 for the second class) when there are two classes."""
    classes, index = np.unique(y, return_inverse=True)
    targets = np.where(index[:, None] == np.arange(len(classes))[None, :], 1.0, -1.0)
    return classes, index, targets[:, 1:] if len(classes) == 2 else targets


def _labels(scores: np.ndarray) -> np.ndarray:
    """Class indices of ridge scores ``[N, T]`` (one column: its sign, two classes)."""
    return (scores[:, 0] > 0).astype(int) if scores.shape[1] == 1 else scores.argmax(1)


@dataclass
class RidgePath:
    """Every penalty of a grid at once (:func:`ridge_path`), ``A`` penalties, ``M`` test rows.

    ``loo_error`` ``[A]`` is the criterion :func:`fit_ridge_loo` minimises, ``loo_accuracy``
    ``[A]`` the leave-one-out accuracy on the training examples, ``test_pred`` ``[A, M]`` the
    predicted labels (values of ``y_train``) of the test rows at each penalty.
    """

    alphas: np.ndarray
    loo_error: np.ndarray
    loo_accuracy: np.ndarray
    test_pred: np.ndarray

    @property
    def chosen(self) -> int:
        """Index of the penalty :func:`fit_ridge_loo` would choose (the first lowest error)."""
        return int(np.argmin(self.loo_error))


def standardised_grams(f_train: np.ndarray, f_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gram matrices of features standardised as :func:`fit_ridge_loo` does.

    Args:
        f_train: training features ``[N, D]``.
        f_test: test features ``[M, D]``.
    Returns:
        ``Z Zᵀ`` ``[N, N]`` and ``Z_test Zᵀ`` ``[M, N]`` (float64), with ``Z`` the features
        centred and scaled by the training mean and standard deviation. Grams of disjoint
        column blocks add up to the Gram of their concatenation.
    """
    x = np.asarray(f_train, dtype=np.float64)
    mean, std = _scale(x)
    z = (x - mean) / std
    z_test = (np.asarray(f_test, dtype=np.float64) - mean) / std
    return z @ z.T, z_test @ z.T


def ridge_path(
    g_train: np.ndarray,
    g_test: np.ndarray,
    y_train: np.ndarray,
    alphas: tuple[float, ...] | list[float] = DEFAULT_ALPHAS,
) -> RidgePath:
    """The ridge classifier of :func:`fit_ridge_loo` at every penalty, from one eigensolve.

    Dual form on standardised features: with ``G = Z Zᵀ = Q Λ Qᵀ`` (``Z`` centred), the fit at
    penalty ``α`` is ``Q diag(λ / (λ + α)) Qᵀ Y_c`` plus the (unpenalised) target means,
    the hat matrix's diagonal ``1/N + Σ_j Q_ij² λ_j / (λ_j + α)``, and test scores
    ``G_test Q diag(1 / (λ + α)) Qᵀ Y_c`` plus the means. Targets are ±1 class indicators
    (one column for two classes), as in scikit-learn's ``RidgeClassifierCV``.

    Args:
        g_train: ``[N, N]`` and ``g_test`` ``[M, N]`` from :func:`standardised_grams`.
        y_train: labels ``[N]`` with at least two classes.
        alphas: the penalties, any order (sorted ascending in the result).
    """
    classes, index, targets = _targets(np.asarray(y_train))
    if len(classes) < 2:
        raise ValueError("ridge_path needs at least two classes in y_train")
    n = len(index)
    means = targets.mean(0)
    lam, q = np.linalg.eigh(g_train)
    lam = np.clip(lam, 0.0, None)
    qy = q.T @ (targets - means)  # [N, T]
    test_q = g_test @ q  # [M, N]
    grid = np.array(sorted(float(a) for a in alphas))
    errors, accuracies, preds = [], [], []
    for alpha in grid:
        shrink = lam / (lam + alpha)
        residual = (targets - means) - q @ (shrink[:, None] * qy)
        leverage_left = 1.0 - 1.0 / n - (q**2) @ shrink
        loo_residual = residual / np.maximum(leverage_left, 1e-12)[:, None]
        errors.append(float((loo_residual**2).mean()))
        accuracies.append(float((_labels(targets - loo_residual) == index).mean()))
        scores = test_q @ (qy / (lam + alpha)[:, None]) + means
        preds.append(classes[_labels(scores)])
    return RidgePath(grid, np.array(errors), np.array(accuracies), np.stack(preds))
