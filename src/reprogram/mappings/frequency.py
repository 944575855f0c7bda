"""``flm`` and ``ilm``: frequency-based one-to-one label mapping (Chen et al., CVPR 2023).

FLM counts, for each target class, which source label the reprogrammed model predicts most
(top-1) and assigns source labels greedily, one per class, before training. ILM repeats that
at the current program before every epoch. The fitted ``index`` is a buffer, so it is saved
with the program and restored on resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..callbacks import Callback
from . import MAPPINGS
from .base import Mapping, greedy_one_to_one
from .callbacks import RemapCallback


@dataclass
class FrequencyConfig:
    """FLM/ILM have no options; the count matrix comes from the training data."""


class FrequencyMapping(Mapping):
    """Target score of class ``t`` = source logit ``index[t]``; ``index`` ``[K_t]``."""

    # buffers
    index: torch.Tensor
    fitted: torch.Tensor

    def __init__(self, num_source: int, num_target: int, every_epoch: bool) -> None:
        super().__init__(num_source, num_target)
        if num_source < num_target:
            raise ValueError(
                f"a one-to-one mapping needs at least as many source labels ({num_source}) as "
                f"target classes ({num_target}); use the linear or random mapping"
            )
        self.remap = "every_epoch" if every_epoch else "once"
        self.register_buffer("index", torch.arange(num_target))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def callbacks(self) -> list[Callback]:
        """The count pass and greedy refit (once, or before every epoch)."""
        return [RemapCallback()]

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits[:, self.index]

    def calibrate(self, counts: torch.Tensor) -> int:
        new = greedy_one_to_one(counts.cpu()).to(self.index.device)
        changed = int((new != self.index).sum()) if bool(self.fitted) else self.num_target
        self.index.copy_(new)
        self.fitted.fill_(True)
        return changed

    def table(self, label_names: list[str], top: int = 3) -> list[dict[str, object]]:
        return [
            {"source_indices": [int(i)], "source_labels": [label_names[int(i)]]} for i in self.index
        ]


@MAPPINGS.register("flm", config=FrequencyConfig, help="frequency mapping, fitted once")
def build_flm(config: FrequencyConfig, num_source: int, num_target: int) -> FrequencyMapping:
    return FrequencyMapping(num_source, num_target, every_epoch=False)


@MAPPINGS.register("ilm", config=FrequencyConfig, help="iterative frequency mapping, every epoch")
def build_ilm(config: FrequencyConfig, num_source: int, num_target: int) -> FrequencyMapping:
    return FrequencyMapping(num_source, num_target, every_epoch=True)
