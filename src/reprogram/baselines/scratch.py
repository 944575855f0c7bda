"""``scratch``: a small CNN trained from random initialisation on the target data alone.

Images get a small 2-D CNN; time series ``[1, L]`` get the FCN of Wang et al. (2017) at half
width (NaN padding left out of its pooling); token sequences ``[L]`` get a learned symbol
embedding read by that FCN.

Same epochs budget, batch size, validation selection and early stopping as ``fit``; Adam,
``--lr`` default 1e-3. No source model is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..errors import ReprogramError
from . import BASELINES
from .base import BuildContext, GradientBaseline
from .models import SequenceCNN, SeriesFCN, SmallCNN


@dataclass
class ScratchOptions:
    """Options of the ``scratch`` CNN."""

    width: int = field(default=32, metadata={"help": "channels of the first conv block"})
    dropout: float = field(default=0.2, metadata={"help": "dropout before the linear layer"})

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"width must be at least 1, got {self.width}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class Scratch(GradientBaseline):
    needs_source = False
    default_lr = 1e-3

    def build(self, ctx: BuildContext) -> nn.Module:
        input_shape, num_classes = ctx.input_shape, ctx.num_classes
        if len(input_shape) == 1 and ctx.vocabulary:  # token ids [L]
            o = self.options
            return SequenceCNN(input_shape, len(ctx.vocabulary), num_classes, o.width, o.dropout)
        if len(input_shape) == 2:  # time series [C, L]: the FCN of Wang et al. 2017
            return SeriesFCN(input_shape, num_classes, self.options.width, self.options.dropout)
        if len(input_shape) != 3:
            raise ReprogramError(
                f"the scratch baseline's CNN takes images [C, H, W], series [1, L] or sequences "
                f"[L] (with their vocabulary); these "
                f"inputs have shape {tuple(input_shape)}."
            )
        return SmallCNN(input_shape, num_classes, self.options.width, self.options.dropout)


@BASELINES.register(
    "scratch",
    config=ScratchOptions,
    help="a small CNN trained from scratch (images ~94k params; series and sequences: FCN)",
)
def build_scratch(options: ScratchOptions) -> Scratch:
    return Scratch(options)
