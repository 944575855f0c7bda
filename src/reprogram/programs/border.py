"""``border``: Elsayed et al. (2019) adversarial reprogramming.

The target image sits at the centre of the canvas (at its own size unless ``inner_size`` is
given) and a learned frame surrounds it: ``x_s = pad(x) + M ⊙ ½(1 + tanh W)``, which keeps the
frame in the valid pixel range (it is the paper's ``tanh(W ⊙ M)`` in ``[-1, 1]`` written in
``[0, 1]`` pixels). ``W = 0`` starts from a grey frame.
"""

from __future__ import annotations

import torch

from . import PROGRAMS
from .base import CanvasConfig, MaskedPatternProgram


class BorderProgram(MaskedPatternProgram):
    """Learned frame ``½(1 + tanh W)`` around the target image; ``W`` ``[C_s, n_border]``."""

    def squash(self, delta: torch.Tensor) -> torch.Tensor:
        return 0.5 * (1.0 + torch.tanh(delta))


@PROGRAMS.register(
    "border", config=CanvasConfig, help="Elsayed et al.: tanh frame around the image"
)
def build_border(
    config: CanvasConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> BorderProgram:
    return BorderProgram(input_shape, source_size, config, default_inner=None)
