"""``blm`` and ``blm+``: Bayesian-guided label mapping (Cai et al., NeurIPS 2024).

A probabilistic many-to-many mapping: the target score of class ``t`` is a weighted sum of
every source logit, ``scores = logits @ W`` with ``W`` ``[K_s, K_t]``, and ``W`` is not
trained by gradient but estimated from how the source answers the training split at the
current program, before every epoch (as ILM is):

1. a joint count ``C`` ``[K_s, K_t]`` of source answers and target labels: ``blm`` adds 1 at
   (the source's top-1 label, the true class) per example; ``blm+`` adds the source's
   probabilities of its ``k`` most probable labels (the rest count 0), so near-misses count too;
2. an estimate of ``P(target t | source label s)``: each row of ``C`` divided by its sum plus a
   Laplace term ``λ`` (``laplace``), which keeps labels the source rarely answers from getting
   confident weights;
3. each column divided by its sum, so every target class spreads a unit weight over the
   source labels (a class no example reached gets uniform weights).

Because columns sum to one, adding a constant to every source logit shifts every target score
by the same amount: the mapping reads a black box's centred log-probabilities as it reads a
white box's logits. It has no gradient parameters (``trainable_parameters`` counts only the
program); ``W`` is a buffer, saved with the artifact and checkpointed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..callbacks import Callback, Trainer
from . import MAPPINGS
from .base import Mapping

#: Share of the target classes that gives ``blm+``'s default ``k`` (the authors' 0.15).
TOP_SHARE = 0.15


@dataclass
class BayesianConfig:
    """Options of ``blm`` / ``blm+``."""

    laplace: float = field(
        default=1.0,
        metadata={"help": "Laplace term λ added to each source label's count (≥ 0)"},
    )
    top_k: int = field(
        default=0,
        metadata={
            "help": "blm+: source labels per example whose probabilities count (0: 15% of "
            "the target classes, at least 1)"
        },
    )

    def __post_init__(self) -> None:
        if not self.laplace >= 0:  # also refuses NaN
            raise ValueError(f"laplace must be at least 0, got {self.laplace}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be at least 0 (0: automatic), got {self.top_k}")


class BayesianMapping(Mapping):
    """``scores [B, K_t] = logits [B, K_s] @ weight [K_s, K_t]``, ``weight`` re-estimated from
    the training split before every epoch (:class:`BayesianRemapCallback`)."""

    remap = "every_epoch"
    weight: torch.Tensor  # buffer [K_s, K_t]
    fitted: torch.Tensor  # buffer, bool

    def __init__(self, num_source: int, num_target: int, laplace: float, top_k: int | None) -> None:
        super().__init__(num_source, num_target)
        self.laplace = float(laplace)
        #: ``None``: top-1 counts (``blm``); else the ``k`` of ``blm+``
        self.top_k = None if top_k is None else max(1, min(int(top_k), num_source))
        self.register_buffer("weight", torch.full((num_source, num_target), 1.0 / num_source))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def callbacks(self) -> list[Callback]:
        return [BayesianRemapCallback()]

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits @ self.weight.to(logits.dtype)

    def joint_counts(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``C`` ``[K_s, K_t]`` from source outputs ``[N, K_s]`` and target labels ``[N]``."""
        outputs = outputs.float()
        if self.top_k is None:
            votes = torch.zeros_like(outputs)
            votes.scatter_(1, outputs.argmax(-1, keepdim=True), 1.0)
        else:
            probs = torch.softmax(outputs, dim=-1)
            values, where = probs.topk(self.top_k, dim=-1)
            votes = torch.zeros_like(probs).scatter_(1, where, values)
        counts = torch.zeros(self.num_target, self.num_source)
        counts.index_add_(0, y.long().cpu(), votes.cpu())
        return counts.T

    def estimate(self, counts: torch.Tensor) -> torch.Tensor:
        """``W`` ``[K_s, K_t]`` from joint counts ``[K_s, K_t]`` (steps 2 and 3 above)."""
        conditional = counts / (counts.sum(1, keepdim=True) + self.laplace).clamp_min(1e-12)
        total = conditional.sum(0, keepdim=True)
        uniform = torch.full_like(conditional, 1.0 / self.num_source)
        return torch.where(total > 0, conditional / total.clamp_min(1e-12), uniform)

    def refit(self, outputs: torch.Tensor, y: torch.Tensor) -> int:
        """Re-estimate ``W`` from the training split's source outputs ``[N, K_s]`` and labels
        ``[N]``; returns how many target classes changed their heaviest source label."""
        new = self.estimate(self.joint_counts(outputs, y)).to(self.weight)
        before = self.weight.argmax(0)
        changed = int((new.argmax(0) != before).sum()) if bool(self.fitted) else self.num_target
        self.weight.copy_(new)
        self.fitted.fill_(True)
        return changed

    def table(self, label_names: list[str], top: int = 3) -> list[dict[str, object]]:
        """Per target class, its ``top`` heaviest source labels and their weights."""
        k = min(top, self.num_source)
        values, where = self.weight.T.topk(k, dim=-1)
        return [
            {
                "source_indices": [int(i) for i in idx],
                "source_labels": [label_names[int(i)] for i in idx],
                "weights": [round(float(v), 4) for v in val],
            }
            for idx, val in zip(where, values, strict=True)
        ]


class BayesianRemapCallback(Callback):
    """Before every epoch, re-estimates a :class:`BayesianMapping` from the training split's
    source outputs at the current program. State: per refit, how many classes changed their
    heaviest source label."""

    name = "bayesian_remap"

    def __init__(self) -> None:
        self.changes: list[dict[str, int]] = []

    def setup_queries(self, trainer: Trainer) -> int:
        """With nothing to train, the one estimate reads the training split at the start."""
        return len(trainer.splits.train) if trainer.trains_nothing else 0

    def epoch_queries(self, trainer: Trainer) -> int:
        """One pass over the training split before each epoch."""
        return len(trainer.splits.train)

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.trains_nothing:  # zero-shot: the start, estimated once, is the candidate
            self.on_epoch_start(trainer, 0)

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        train = trainer.splits.train
        outputs = trainer.source_outputs(train)
        changed = trainer.model.mapping.refit(outputs, train.y)
        self.changes = [c for c in self.changes if c["epoch"] != epoch]  # a resumed epoch
        self.changes.append({"epoch": epoch, "changed": changed})

    def state_dict(self) -> dict[str, Any]:
        return {"changes": list(self.changes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.changes = list(state.get("changes", []))


@MAPPINGS.register(
    "blm",
    config=BayesianConfig,
    help="Bayesian-guided mapping: every source logit weighted by P(class | top-1 label), "
    "re-estimated each epoch (no gradient parameters)",
)
def build_blm(config: BayesianConfig, num_source: int, num_target: int) -> BayesianMapping:
    return BayesianMapping(num_source, num_target, config.laplace, None)


@MAPPINGS.register(
    "blm+",
    config=BayesianConfig,
    help="blm from the source's top-k probabilities instead of its top-1 label (k: 15% of "
    "the classes)",
)
def build_blm_plus(config: BayesianConfig, num_source: int, num_target: int) -> BayesianMapping:
    k = config.top_k or max(1, int(num_target * TOP_SHARE))
    return BayesianMapping(num_source, num_target, config.laplace, k)


__all__ = ["TOP_SHARE", "BayesianConfig", "BayesianMapping", "BayesianRemapCallback"]
