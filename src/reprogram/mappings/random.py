"""``random``: Voice2Series' many-to-one mapping.

Each target class owns ``m`` distinct source labels drawn at random (seeded); its score is the
log of the mean source probability over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import MAPPINGS
from .base import Mapping


@dataclass
class RandomConfig:
    labels_per_class: int = field(
        default=10, metadata={"help": "source labels averaged for each target class (m)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the random draw"})

    def __post_init__(self) -> None:
        if self.labels_per_class < 1:
            raise ValueError(f"labels_per_class must be at least 1, got {self.labels_per_class}")


class RandomMapping(Mapping):
    """``groups`` ``[K_t, m]`` source indices; scores ``log mean softmax(logits)[groups]``."""

    def __init__(self, num_source: int, num_target: int, config: RandomConfig) -> None:
        super().__init__(num_source, num_target)
        m = config.labels_per_class
        if m * num_target > num_source:
            raise ValueError(
                f"{num_target} classes × {m} labels each needs {m * num_target} source labels; "
                f"the source has {num_source}: lower labels_per_class"
            )
        gen = torch.Generator().manual_seed(config.seed)
        perm = torch.randperm(num_source, generator=gen)[: m * num_target]
        self.register_buffer("groups", perm.view(num_target, m))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits, dim=-1)
        return torch.log(probs[:, self.groups].mean(-1).clamp_min(1e-12))

    def table(self, label_names: list[str], top: int = 3) -> list[dict[str, object]]:
        return [
            {"source_indices": row.tolist(), "source_labels": [label_names[i] for i in row]}
            for row in self.groups
        ]


@MAPPINGS.register("random", config=RandomConfig, help="V2S: m random source labels per class")
def build_random(config: RandomConfig, num_source: int, num_target: int) -> RandomMapping:
    return RandomMapping(num_source, num_target, config)
