"""Scoring a model on a split; shared by training, ``reprogram eval`` and benchmarks."""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from .accelerator import to_model
from .batching import length_order, restore
from .tasks import CLASSIFICATION, Task


@torch.no_grad()
def score(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    progress: str | None = None,
    keep: list[torch.Tensor] | None = None,
    task: Task = CLASSIFICATION,
    by_length: bool | None = None,
) -> torch.Tensor:
    """A split's summed statistics as a float64 tensor (``task.totals``; for classification
    ``[3]``: summed cross-entropy, number correct, count).

    Args:
        model: maps ``[B, ...]`` inputs to ``[B, K]`` scores; put in eval mode here.
        x: inputs ``[N, ...]``; y: labels ``[N]``.
        batch_size: examples per forward pass (kept fixed so results are bit-reproducible;
            token ids are read longest first, :func:`reprogram.batching.length_order`).
        progress: a progress-bar title, or None for no bar.
        keep: when given, the split's scores ``[N, K]`` (on the CPU, in the rows' order) are
            appended to it (for :func:`roc_auc`).
        task: the task kind whose statistics are summed (:mod:`reprogram.tasks`).
        by_length: whether token ids are read longest first; None (the default): as
            ``REPROGRAM_LENGTH_BATCHING`` says. ``reprogram eval`` passes what the run
            recorded, so its figures reproduce bit for bit.
    """
    model.eval()
    totals: torch.Tensor | None = None
    # token ids: longest first, so a batch pads little
    order = None if by_length is False else length_order(x, honour_env=by_length is None)
    if order is not None:
        x, y = x[order], y[order.to(y.device)]
    kept: list[torch.Tensor] = []
    starts = range(0, len(y), batch_size)
    bar = tqdm(starts, desc=progress, leave=False, unit="batch", disable=progress is None)
    for i in bar:
        xb, yb = to_model(model, x[i : i + batch_size], y[i : i + batch_size])
        scores = model(xb)
        if keep is not None:
            kept.append(scores.detach().float().cpu())
        batch = task.totals(scores, yb)
        totals = batch if totals is None else totals + batch
    if keep is not None and kept:
        keep.append(restore(torch.cat(kept), order))  # in the rows' given order
    if totals is None:  # no examples: the statistics of an empty split
        totals = task.totals(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    return totals


def loss_and_accuracy(totals: torch.Tensor) -> tuple[float, float]:
    """Mean loss and accuracy from :func:`score`'s totals."""
    n = max(float(totals[2]), 1.0)
    return float(totals[0]) / n, float(totals[1]) / n


def roc_auc(kept: list[torch.Tensor], y: torch.Tensor) -> float | None:
    """ROC-AUC of a two-class task from the scores :func:`score` kept (class 1 positive,
    ranked by the score margin ``s_1 - s_0``); None for other tasks or when the labels hold
    one class only."""
    if not kept:
        return None
    scores = torch.cat(kept)
    if scores.shape[1] != 2 or len(torch.unique(y)) != 2:
        return None
    from sklearn.metrics import roc_auc_score

    margin = (scores[:, 1] - scores[:, 0]).double().numpy()
    return float(roc_auc_score(y.cpu().numpy(), margin))
