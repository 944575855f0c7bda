"""Task kinds: what a model's scores mean, how they are trained, scored and compared.

``classification``: scores ``[B, K]`` are logits; cross-entropy trains; accuracy (ties to the
lower loss) selects. ``regression``: scores ``[B, H]`` are the predicted values (one, or a
forecast's ``H`` steps); mean squared error trains and selects; MSE, RMSE, MAE and R² are
reported. A split's statistics are summed
batch by batch (:meth:`Task.totals`), so a sharded or chunked pass gives exactly the same
numbers as one pass.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


class Task:
    """Base of task kinds (stateless; one instance each: :data:`TASKS`)."""

    name = ""
    #: The figure that selects and heads reports: ``accuracy`` or ``rmse``.
    headline = ""

    def loss(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean training loss of scores ``[B, K]`` against targets ``[B]``."""
        raise NotImplementedError

    def totals(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Summed statistics of one batch, float64 ``[S]`` (added over batches)."""
        raise NotImplementedError

    def summary(self, totals: torch.Tensor, detail: bool = False) -> dict[str, Any]:
        """``{"loss": …, headline: …, …}`` from a whole split's :meth:`totals` (floats;
        ``detail`` adds lists where the task has them, such as a forecast's error per step)."""
        raise NotImplementedError

    def better(self, candidate: dict[str, float], best: dict[str, float]) -> bool:
        """Whether validation ``candidate`` beats ``best`` (both :meth:`summary` results)."""
        raise NotImplementedError

    def rule(self) -> str:
        """The selection rule in words (``metrics.json``'s ``selection``)."""
        raise NotImplementedError


class Classification(Task):
    name = "classification"
    headline = "accuracy"

    def loss(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(scores, y)

    def totals(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tensor(
            [
                float(F.cross_entropy(scores, y, reduction="sum")),
                float((scores.argmax(-1) == y).sum()),
                float(len(y)),
            ],
            dtype=torch.float64,
        )

    def summary(self, totals: torch.Tensor, detail: bool = False) -> dict[str, Any]:
        n = max(float(totals[2]), 1.0)
        return {"loss": float(totals[0]) / n, "accuracy": float(totals[1]) / n}

    def better(self, candidate: dict[str, float], best: dict[str, float]) -> bool:
        return (candidate["accuracy"], -candidate["loss"]) > (best["accuracy"], -best["loss"])

    def rule(self) -> str:
        return "best validation accuracy, ties to lower validation loss"


class Regression(Task):
    """Scores ``[B, H]`` predict targets ``[B]`` (one value, ``H = 1``) or ``[B, H]`` (a
    forecast's ``H`` future steps). Errors are averaged over every predicted value; with
    ``H > 1`` the summary also has ``mse_by_step`` (``[H]``, one MSE per future step) when
    asked for the detail."""

    name = "regression"
    headline = "rmse"

    @staticmethod
    def _pair(scores: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions and targets as ``[B, H]`` (one-value targets: ``H = 1``)."""
        target = y.reshape(y.shape[0], -1) if y.dim() > 1 else y.unsqueeze(1)
        values = scores.reshape(scores.shape[0], -1)[:, : target.shape[1]]
        return values, target.to(values.dtype)

    def loss(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(*self._pair(scores, y))

    def totals(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        values, target = self._pair(scores, y)
        err = values.double() - target.double()
        t = target.double()
        head = torch.stack(
            [
                (err**2).sum(),
                err.abs().sum(),
                torch.tensor(float(t.numel()), dtype=torch.float64, device=t.device),
                t.sum(),
                (t**2).sum(),
            ]
        )
        if target.shape[1] == 1:
            return head.cpu()
        return torch.cat([head, (err**2).sum(0)]).cpu()  # then the per-step squared errors

    def summary(self, totals: torch.Tensor, detail: bool = False) -> dict[str, Any]:
        sse, sae, n, s, s2 = (float(v) for v in totals[:5])
        n = max(n, 1.0)
        spread = s2 - s * s / n  # total sum of squares around the split's mean
        out: dict[str, Any] = {
            "loss": sse / n,
            "mse": sse / n,
            "rmse": math.sqrt(sse / n),
            "mae": sae / n,
            "r2": 1.0 - sse / spread if spread > 0 else float("nan"),
        }
        steps = totals[5:]
        if detail and len(steps):
            rows = n / len(steps)
            out["mse_by_step"] = [round(float(v) / rows, 6) for v in steps]
        return out

    def better(self, candidate: dict[str, float], best: dict[str, float]) -> bool:
        return candidate["loss"] < best["loss"]

    def rule(self) -> str:
        return "lowest validation mean squared error"


CLASSIFICATION = Classification()
REGRESSION = Regression()
TASKS: dict[str, Task] = {"classification": CLASSIFICATION, "regression": REGRESSION}


def named(prefix: str, summary: dict[str, Any] | None) -> dict[str, Any]:
    """A summary as metrics: ``{prefix}_loss``, ``{prefix}_accuracy`` (None for regression)
    and the task's other figures (``{prefix}_rmse`` …); both None for a missing summary."""
    if summary is None:
        return {f"{prefix}_loss": None, f"{prefix}_accuracy": None}
    return {
        f"{prefix}_loss": summary["loss"],
        f"{prefix}_accuracy": summary.get("accuracy"),
        **{f"{prefix}_{k}": v for k, v in summary.items() if k not in ("loss", "accuracy")},
    }


def unnamed(prefix: str, metrics: dict[str, object]) -> dict[str, float]:
    """The summary :func:`named` made ``metrics`` from (its ``None`` entries left out)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if key.startswith(prefix + "_") and isinstance(value, (int, float)):
            out[key[len(prefix) + 1 :]] = float(value)
    return out


def task_of(kind: str) -> Task:
    """The task kind named ``kind`` (``classification`` or ``regression``)."""
    try:
        return TASKS[kind]
    except KeyError:
        raise ValueError(f"unknown task kind {kind!r}; use {', '.join(TASKS)}") from None


__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "TASKS",
    "Classification",
    "Regression",
    "Task",
    "named",
    "task_of",
    "unnamed",
]
