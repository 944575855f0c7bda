"""``finetune``: every weight of the source trained, with a new linear head.

A language source on a sequence target is fine-tuned whole as well: the sequence spelled
as the ``text`` program spells it, read from the copy's trained input embeddings.

Same epochs budget, batch size, validation selection and early stopping as ``fit``; Adam
with a learning rate suited to pre-trained weights (``--lr``, default 3e-4).
"""

from __future__ import annotations

from torch import nn

from . import BASELINES
from .base import BuildContext, GradientBaseline
from .models import FinetunedLanguageModel, FinetunedSource


class Finetune(GradientBaseline):
    needs_source = True
    default_lr = 3e-4
    modalities = ("image", "sequence")

    def build(self, ctx: BuildContext) -> nn.Module:
        source, input_shape, num_classes, canvas_size = (
            ctx.source,
            ctx.input_shape,
            ctx.num_classes,
            ctx.canvas_size,
        )
        assert source is not None
        if len(input_shape) == 1 and ctx.vocabulary:  # a sequence on a language source
            return FinetunedLanguageModel(source, ctx.vocabulary, input_shape, num_classes)
        return FinetunedSource(source, input_shape, num_classes, canvas_size)


@BASELINES.register(
    "finetune", help="all source weights trained with a new linear head (Adam, lr 3e-4)"
)
def build_finetune(options: None) -> Finetune:
    return Finetune(options)
