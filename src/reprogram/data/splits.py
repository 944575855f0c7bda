"""From loaded target data to what a trainer sees: few-shot train, validation, sealed test.

All randomness comes from a ``torch.Generator`` seeded with the run seed (never the global
RNG), so the same seed gives the same splits. Few-shot selection happens *before* the
validation carve: validation examples come out of the ``K`` shots (honest few-shot).
"""

from __future__ import annotations

import math

import torch

from ..errors import DataError, ReprogramError
from .base import PreparedSplits, SealedSplit, Split, TargetData


def _round_half_up(value: float) -> int:
    """Round to the nearest integer, halves up (``2.5 → 3``), unlike Python's ``round``."""
    return math.floor(value + 0.5)


def _class_name(c: int, class_names: list[str] | None) -> str:
    """``class 3 ('Dress')`` for messages."""
    if class_names is not None and c < len(class_names) and class_names[c] != str(c):
        return f"class {c} ({class_names[c]!r})"
    return f"class {c}"


def _indices_by_class(y: torch.Tensor) -> dict[int, torch.Tensor]:
    """Map each class in labels ``y`` ``[N]`` to the sorted indices ``[n_c]`` holding it."""
    return {int(c): torch.nonzero(y == c).flatten() for c in torch.unique(y).tolist()}


def _shuffled(index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``index`` ``[n]`` in a seeded random order."""
    return index[torch.randperm(len(index), generator=generator)]


def holdout_split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed stratified split of labels ``y`` ``[N]``: ``(keep, held)`` sorted index tensors.

    Each class with ``n >= 2`` examples holds out ``round(fraction * n)`` of them, at least 1
    and at most ``n - 1``; a class with a single example keeps it. Used for data sets without
    an official test split (``digits``, single-level ``folder:``), with a seed of its own.
    """
    generator = torch.Generator().manual_seed(seed)
    keep, held = [], []
    for index in _indices_by_class(y).values():
        n = len(index)
        n_held = 0 if n < 2 else min(max(1, _round_half_up(fraction * n)), n - 1)
        order = _shuffled(index, generator)
        held.append(order[:n_held])
        keep.append(order[n_held:])
    return torch.sort(torch.cat(keep)).values, torch.sort(torch.cat(held)).values


def _check_shots(shots: int | None) -> None:
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
        raise ReprogramError(f"--shots must be a whole number of at least 1, got {shots!r}.")


def _check_args(shots: int | None, val_fraction: float) -> None:
    _check_shots(shots)
    if not 0.0 < val_fraction < 1.0:
        raise ReprogramError(
            f"--val-fraction must be strictly between 0 and 1, got {val_fraction!r}."
        )


def select_shots(
    y: torch.Tensor, shots: int, class_names: list[str], generator: torch.Generator
) -> torch.Tensor:
    """Sorted indices ``[K * num_classes]`` of ``shots`` random examples of each class in ``y``."""
    by_class = _indices_by_class(y)
    chosen = []
    for c in range(len(class_names)):
        index = by_class.get(c, torch.empty(0, dtype=torch.long))
        if len(index) < shots:
            raise DataError(
                f"{_class_name(c, class_names)} has {len(index)} training examples, fewer than "
                f"--shots {shots}; lower --shots or add examples of that class."
            )
        chosen.append(_shuffled(index, generator)[:shots])
    return torch.sort(torch.cat(chosen)).values


def carve_validation(
    y: torch.Tensor, val_fraction: float, class_names: list[str], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split labels ``y`` ``[N]`` into sorted ``(train, val)`` indices, stratified by class.

    Each class gives ``max(1, round(val_fraction * n_c))`` examples to validation and must keep
    at least one for training.
    """
    train, val = [], []
    for c, index in _indices_by_class(y).items():
        n = len(index)
        n_val = max(1, _round_half_up(val_fraction * n))
        if n - n_val < 1:
            fix = (
                "add examples of that class (raise --shots if you gave it), or give a "
                "validation split (a csv: file's split column with val rows)"
                if n < 2  # one example: validation takes it whatever the fraction
                else "lower --val-fraction or raise --shots (or give a validation split)"
            )
            raise DataError(
                f"{_class_name(c, class_names)} has only {n} training example(s): taking "
                f"{n_val} for validation (--val-fraction {val_fraction:g}) leaves none to train "
                f"on; {fix}."
            )
        order = _shuffled(index, generator)
        val.append(order[:n_val])
        train.append(order[n_val:])
    return torch.sort(torch.cat(train)).values, torch.sort(torch.cat(val)).values


def prepare_splits(
    data: TargetData, *, shots: int | None = None, val_fraction: float = 0.2, seed: int = 0
) -> PreparedSplits:
    """Few-shot train, validation and sealed test from ``data``; the same seed, the same splits.

    Args:
        data: the loaded target (``train.x`` ``[N, C, H, W]``, ``train.y`` ``[N]``).
        shots: keep this many random training examples per class (``None``: keep all).
        val_fraction: share of each class's (kept) training examples used for validation,
            when ``data.val`` is not given; must lie in ``(0, 1)``.
        seed: seeds the selection and the carve.

    Returns:
        train and val :class:`Split` s open, test wrapped in a :class:`SealedSplit`.
    """
    _check_args(shots, val_fraction)
    generator = torch.Generator().manual_seed(seed)
    train = _draw_shots(data, shots, generator)
    if data.val is not None:
        val = data.val
    elif data.task == "regression":
        keep, held = random_carve(len(train), val_fraction, generator)
        train, val = train.subset(keep), train.subset(held)
    else:
        keep, held = carve_validation(train.y, val_fraction, data.class_names, generator)
        train, val = train.subset(keep), train.subset(held)
    return PreparedSplits(
        train=train,
        val=val,
        test=SealedSplit(data.test),
        class_names=list(data.class_names),
        input_shape=data.input_shape,
        modality=data.modality,
        vocabulary=data.vocabulary,
        task=data.task,
        forecast=data.forecast,
    )


def few_shot_pool(data: TargetData, *, shots: int | None = None, seed: int = 0) -> Split:
    """The training examples a run may use, nothing held out: ``shots`` per class drawn as
    :func:`prepare_splits` draws them (same seed, same examples), or all of them."""
    _check_shots(shots)
    return _draw_shots(data, shots, torch.Generator().manual_seed(seed))


def _draw_shots(data: TargetData, shots: int | None, generator: torch.Generator) -> Split:
    """``shots`` random training examples per class (a regression target: ``shots`` in all;
    all of them for ``None``); the first draw from ``generator``, so the carve that may
    follow continues the same stream."""
    if shots is None:
        return data.train
    if data.forecast is not None:
        raise DataError(
            f"--shots {shots} draws examples at random, which breaks a forecasting target's "
            "time order; use --train-fraction F (the first F of the training windows) instead."
        )
    if data.task == "regression":
        if shots > len(data.train):
            raise DataError(
                f"--shots {shots} asks for more examples than the {len(data.train)} training "
                "rows of this regression target; lower --shots."
            )
        chosen = torch.randperm(len(data.train), generator=generator)[:shots]
        return data.train.subset(torch.sort(chosen).values)
    return data.train.subset(select_shots(data.train.y, shots, data.class_names, generator))


def random_carve(
    n: int, val_fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted ``(train, val)`` indices of ``n`` examples, ``round(val_fraction * n)`` (at least
    1) held out at random: the carve of a regression target, which has no classes."""
    n_val = max(1, _round_half_up(val_fraction * n))
    if n - n_val < 2:
        raise DataError(
            f"{n} training examples leave too few to train on after taking {n_val} for "
            "validation; raise --shots or lower --val-fraction."
        )
    order = torch.randperm(n, generator=generator)
    return torch.sort(order[n_val:]).values, torch.sort(order[:n_val]).values


def value_folds(y: torch.Tensor, k: int, seed: int) -> list[torch.Tensor]:
    """``k`` disjoint sorted index tensors covering regression targets ``y`` ``[N]``, each
    spanning the range of values alike.

    The examples are ordered by value and cut into runs of ``k``; each run deals its members
    to the ``k`` folds in a seeded random order (the last, shorter run to a random subset), so
    every fold holds about one example of each ``k``-quantile and fold sizes differ by at most
    one: the regression counterpart of class stratification.
    """
    if k < 2:
        raise ReprogramError(f"k-fold selection needs at least 2 folds, got {k}.")
    if 2 * k > len(y):
        raise DataError(
            f"k-fold selection with {k} folds needs at least {2 * k} training examples (two "
            f"per fold), this target has {len(y)}; use fewer folds."
        )
    generator = torch.Generator().manual_seed(seed)
    order = torch.argsort(y.float().reshape(len(y)), stable=True)
    folds: list[list[torch.Tensor]] = [[] for _ in range(k)]
    for start in range(0, len(order), k):
        run = order[start : start + k]
        for fold, example in zip(torch.randperm(k, generator=generator).tolist(), run,
                                 strict=False):
            folds[fold].append(example.reshape(1))
    return [torch.sort(torch.cat(f)).values for f in folds]


def stratified_folds(
    y: torch.Tensor, k: int, seed: int, class_names: list[str]
) -> list[torch.Tensor]:
    """``k`` disjoint sorted index tensors covering labels ``y`` ``[N]``, stratified by class.

    Each class's examples are shuffled (seeded) and dealt to the folds in turn, the dealing
    continuing where the previous class stopped, so fold sizes differ by at most one. Every
    class needs at least two examples (each fold's training part must hold every class).
    """
    if k < 2:
        raise ReprogramError(f"k-fold selection needs at least 2 folds, got {k}.")
    if k > len(y):
        raise DataError(
            f"k-fold selection with {k} folds needs at least {k} training examples, this target "
            f"has {len(y)}; use fewer folds."
        )
    generator = torch.Generator().manual_seed(seed)
    folds: list[list[torch.Tensor]] = [[] for _ in range(k)]
    start = 0
    for c, index in sorted(_indices_by_class(y).items()):
        if len(index) < 2:
            raise DataError(
                f"{_class_name(c, class_names)} has {len(index)} training example; k-fold "
                "selection needs at least 2 per class (one to hold out, one to train on)."
            )
        order = _shuffled(index, generator)
        for i, example in enumerate(order):
            folds[(start + i) % k].append(example.reshape(1))
        start = (start + len(order)) % k
    return [
        torch.sort(torch.cat(f)).values if f else torch.empty(0, dtype=torch.long) for f in folds
    ]
