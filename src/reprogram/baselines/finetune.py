"""``finetune``: every weight of the source trained, with a new linear head.

Same epochs budget, batch size, validation selection and early stopping as ``fit``; Adam
with a learning rate suited to pre-trained weights (``--lr``, default 3e-4).
"""

from __future__ import annotations

from torch import nn

from ..sources import Source
from . import BASELINES
from .base import GradientBaseline
from .models import FinetunedSource


class Finetune(GradientBaseline):
    needs_source = True
    default_lr = 3e-4

    def build(
        self,
        source: Source | None,
        input_shape: tuple[int, ...],
        num_classes: int,
        canvas_size: int | None,
    ) -> nn.Module:
        assert source is not None
        return FinetunedSource(source, input_shape, num_classes, canvas_size)


@BASELINES.register(
    "finetune", help="all source weights trained with a new linear head (Adam, lr 3e-4)"
)
def build_finetune(options: None) -> Finetune:
    return Finetune(options)
