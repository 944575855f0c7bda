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
    """The chosen model: ``weight`` ``[K, D]``, ``bias`` ``[K]``, its ``alpha``, LOO error."""

    weight: torch.Tensor
    bias: torch.Tensor
    alpha: float
    loo_error: float


def fit_ridge_loo(
    f_train: torch.Tensor,
    y_train: torch.Tensor,
    num_classes: int,
    alphas: tuple[float, ...] | list[float] = DEFAULT_ALPHAS,
) -> RidgeFit:
    """Fit a ridge classifier on features ``[N, D]`` and labels ``[N]``; penalty by LOO.

    Classes missing from ``y_train`` get a very low score. With a single class present every
    input gets that class.
    """
    from sklearn.linear_model import RidgeClassifierCV

    if len(f_train) != len(y_train):
        raise ValueError(f"{len(f_train)} feature rows but {len(y_train)} labels")
    if not alphas:
        raise ValueError("alphas must not be empty")
    x = f_train.double().numpy()
    y = y_train.numpy()
    mean, std = x.mean(0), x.std(0)
    std[std < 1e-8] = 1.0
    classes = np.unique(y)
    if len(classes) < 2:  # nothing to separate: a constant answer
        w = torch.zeros(num_classes, x.shape[1])
        b = torch.full((num_classes,), -1e4)
        b[int(classes[0])] = 0.0
        return RidgeFit(w, b, float(max(alphas)), 0.0)
    clf = RidgeClassifierCV(alphas=sorted(float(a) for a in alphas))
    clf.fit((x - mean) / std, y)
    coef = np.atleast_2d(clf.coef_)
    intercept = np.atleast_1d(clf.intercept_)
    w, b = fold_logistic(coef, intercept, clf.classes_, mean, std, num_classes)
    return RidgeFit(w, b, float(clf.alpha_), float(-clf.best_score_))
