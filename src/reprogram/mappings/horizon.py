"""``horizon``: Time-LLM's output projection, from a language model's patch states to a forecast.

It reads the last ``P`` positions' states ``[B, P, D]`` (a ``patch-reprogram`` program makes
the source answer them), projects each to ``width`` features, flattens ``P·width`` and maps
them linearly to the ``H`` future steps; the forecast is then scaled back with each input
window's own mean and standard deviation (the program normalised them away), so the mapping
reads the target inputs too (``reads_inputs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..forecast import InstanceNorm
from . import MAPPINGS
from .base import Mapping


@dataclass
class HorizonConfig:
    """Options of ``horizon`` (``positions`` is filled in from the program)."""

    width: int = field(default=32, metadata={"help": "features kept per patch state"})
    positions: int = field(
        default=0, metadata={"help": "patch states read (set from the program)"}
    )
    dropout: float = field(default=0.1, metadata={"help": "dropout before the projection"})

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"width must be at least 1, got {self.width}")
        if self.positions < 0:
            raise ValueError(f"positions must be >= 0, got {self.positions}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class HorizonMapping(Mapping):
    """``[B, P, D]`` states (and the ``[B, 1, L]`` windows) → ``[B, H]`` forecasts."""

    reads_labels = False
    predicts_values = True
    reads_inputs = True

    def __init__(self, num_source: int, num_target: int, config: HorizonConfig) -> None:
        super().__init__(num_source, num_target)
        if config.positions < 1:
            raise ValueError(
                "the horizon mapping reads patch states: use it with --program patch-reprogram"
            )
        self.positions = config.positions
        self.reduce = nn.Linear(num_source, config.width)
        self.drop = nn.Dropout(config.dropout)
        self.project = nn.Linear(config.positions * config.width, num_target)
        self.norm = InstanceNorm()

    def forward(self, states: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        flat = self.drop(self.reduce(states).flatten(1))  # [B, P·width]
        return self.norm.undo(self.project(flat), inputs)

    def table(self, label_names: list[str], top: int = 3) -> list[dict[str, object]]:
        return []  # a projection, not a choice of source labels


@MAPPINGS.register(
    "horizon",
    config=HorizonConfig,
    help="forecasting: patch states → the next H steps (Time-LLM's output projection)",
)
def build_horizon(config: HorizonConfig, num_source: int, num_target: int) -> HorizonMapping:
    return HorizonMapping(num_source, num_target, config)
