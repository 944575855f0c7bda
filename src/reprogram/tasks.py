"""Task kinds: what a model's scores mean, how they are trained, scored and compared.

``classification``: scores ``[B, K]`` are logits; cross-entropy trains; accuracy (ties to the
lower loss) selects. ``regression``: scores ``[B, 1]`` are the predicted value; mean squared
error trains and selects; RMSE, MAE and R² are reported. A split's statistics are summed
batch by batch (:meth:`Task.totals`), so a sharded or chunked pass gives exactly the same
numbers as one pass.
"""

from __future__ import annotations

import math

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

    def summary(self, totals: torch.Tensor) -> dict[str, float]:
        """``{"loss": …, headline: …, …}`` from a whole split's :meth:`totals`."""
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

    def summary(self, totals: torch.Tensor) -> dict[str, float]:
        n = max(float(totals[2]), 1.0)
        return {"loss": float(totals[0]) / n, "accuracy": float(totals[1]) / n}

    def better(self, candidate: dict[str, float], best: dict[str, float]) -> bool:
        return (candidate["accuracy"], -candidate["loss"]) > (best["accuracy"], -best["loss"])

    def rule(self) -> str:
        return "best validation accuracy, ties to lower validation loss"


class Regression(Task):
    name = "regression"
    headline = "rmse"

    @staticmethod
    def _values(scores: torch.Tensor) -> torch.Tensor:
        return scores.reshape(scores.shape[0], -1)[:, 0]

    def loss(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self._values(scores), y.to(scores.dtype))

    def totals(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        err = self._values(scores).double() - y.double()
        t = y.double()
        return torch.stack(
            [
                (err**2).sum(),
                err.abs().sum(),
                torch.tensor(float(len(y)), dtype=torch.float64),
                t.sum(),
                (t**2).sum(),
            ]
        ).cpu()

    def summary(self, totals: torch.Tensor) -> dict[str, float]:
        sse, sae, n, s, s2 = (float(v) for v in totals)
        n = max(n, 1.0)
        spread = s2 - s * s / n  # total sum of squares around the split's mean
        return {
            "loss": sse / n,
            "rmse": math.sqrt(sse / n),
            "mae": sae / n,
            "r2": 1.0 - sse / spread if spread > 0 else float("nan"),
        }

    def better(self, candidate: dict[str, float], best: dict[str, float]) -> bool:
        return candidate["loss"] < best["loss"]

    def rule(self) -> str:
        return "lowest validation mean squared error"


CLASSIFICATION = Classification()
REGRESSION = Regression()
TASKS: dict[str, Task] = {"classification": CLASSIFICATION, "regression": REGRESSION}


def named(prefix: str, summary: dict[str, float] | None) -> dict[str, float | None]:
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
