"""``random``: Voice2Series' many-to-one mapping.

Each target class owns ``m`` distinct source labels drawn at random (seeded); its score is the
log of the mean source probability over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import MAPPINGS
from .base import GroupedMapping


@dataclass
class RandomConfig:
    labels_per_class: int = field(
        default=10, metadata={"help": "source labels averaged for each target class (m)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the random draw"})

    def __post_init__(self) -> None:
        if self.labels_per_class < 1:
            raise ValueError(f"labels_per_class must be at least 1, got {self.labels_per_class}")


class RandomMapping(GroupedMapping):
    """``groups`` ``[K_t, m]``: distinct source labels drawn at random (seeded)."""

    scores_untrained = True  # its table is fixed when built: --epochs 0 is zero-shot

    def __init__(self, num_source: int, num_target: int, config: RandomConfig) -> None:
        m = config.labels_per_class
        super().__init__(num_source, num_target, m)
        gen = torch.Generator().manual_seed(config.seed)
        perm = torch.randperm(num_source, generator=gen)[: m * num_target]
        self.groups.copy_(perm.view(num_target, m))


@MAPPINGS.register("random", config=RandomConfig, help="V2S: m random source labels per class")
def build_random(config: RandomConfig, num_source: int, num_target: int) -> RandomMapping:
    return RandomMapping(num_source, num_target, config)
