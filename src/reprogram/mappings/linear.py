"""``linear``: a learned affine layer on the source logits."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from . import MAPPINGS
from .base import Mapping


@dataclass
class LinearConfig:
    """Options of the linear mapping."""

    init: str = field(
        default="zero",
        metadata={
            "help": "zero: weights start at zero; probe: start from a logistic regression on "
            "the source logits at the initial program (C chosen on validation), which is then "
            "also a selection candidate (epoch 0)"
        },
    )

    head: str = field(
        default="sgd",
        metadata={
            "help": "sgd: the layer trains with the program by gradient; ridge: the layer is "
            "frozen while the program trains and refitted in closed form before every "
            "validation (ridge classifier on the training split's standardised source "
            "outputs, penalty by leave-one-out), the untrained program being epoch 0"
        },
    )

    def __post_init__(self) -> None:
        if self.init not in ("zero", "probe"):
            raise ValueError(f"init must be zero or probe, got {self.init!r}")
        if self.head not in ("sgd", "ridge"):
            raise ValueError(f"head must be sgd or ridge, got {self.head!r}")
        if self.head == "ridge" and self.init != "zero":
            raise ValueError("head=ridge fits its own starting layer (epoch 0); drop init=probe")


class LinearMapping(Mapping):
    """``W · logits + b``, ``W`` ``[K_t, K_s]``; starts at zero so every class starts equal.

    Works on any source outputs, so on a ``features:`` source's features ``[B, D]`` too.
    With ``head="ridge"`` the layer takes no gradient (the trainer's ridge-head callback
    refits it in closed form).
    """

    reads_labels = False

    def __init__(
        self, num_source: int, num_target: int, init: str = "zero", head: str = "sgd"
    ) -> None:
        super().__init__(num_source, num_target)
        self.init = init
        self.head = head
        self.linear = nn.Linear(num_source, num_target)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        if head == "ridge":
            self.linear.requires_grad_(False)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return self.linear(logits)

    def table(self, label_names: list[str], top: int = 3) -> list[dict[str, object]]:
        weights = self.linear.weight.detach()
        rows = []
        for row in weights:
            idx = torch.topk(row, k=min(top, row.numel())).indices
            rows.append(
                {
                    "source_indices": idx.tolist(),
                    "source_labels": [label_names[int(i)] for i in idx],
                    "weights": [round(float(row[i]), 4) for i in idx],
                }
            )
        return rows


@MAPPINGS.register("linear", config=LinearConfig, help="learned linear layer on source logits")
def build_linear(config: LinearConfig, num_source: int, num_target: int) -> LinearMapping:
    return LinearMapping(num_source, num_target, init=config.init, head=config.head)
