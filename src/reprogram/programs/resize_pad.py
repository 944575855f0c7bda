"""``resize-pad``: ILM-VP's padding prompt (Chen et al., CVPR 2023).

The target image is resized to ``inner_size`` (default three quarters of the canvas), padded
to the canvas, and a learned perturbation fills the padding: ``pad(resize(x)) + sigmoid(δ) ⊙ M``.
"""

from __future__ import annotations

import torch

from . import PROGRAMS
from .base import CanvasConfig, MaskedPatternProgram, canvas_side


class ResizePadProgram(MaskedPatternProgram):
    """Resize, pad, and add ``sigmoid(δ)`` on the padding; ``δ`` ``[C_s, n_border]``."""

    def squash(self, delta: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(delta)


@PROGRAMS.register(
    "resize-pad", config=CanvasConfig, help="ILM-VP: resize, pad, learned sigmoid padding"
)
def build_resize_pad(
    config: CanvasConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> ResizePadProgram:
    canvas = canvas_side(config, input_shape, source_size)
    return ResizePadProgram(input_shape, source_size, config, default_inner=round(0.75 * canvas))
