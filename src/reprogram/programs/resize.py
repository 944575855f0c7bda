"""``resize``: no trainable program, the image resized to the whole canvas.

The reference point of every program: what linear probes and fine-tuning see, and, with the
``linear`` mapping, a linear probe on the source's logits.
"""

from __future__ import annotations

import torch

from . import PROGRAMS
from .base import CanvasConfig, ImageProgram, canvas_side


class ResizeProgram(ImageProgram):
    """``resize(x)`` to ``[B, C_s, S, S]``: grey → RGB and bilinear resize, nothing trained."""

    def pattern(self) -> torch.Tensor:
        return self.mask.new_zeros(self.channels, self.canvas, self.canvas)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, C_s, S, S]``."""
        return self.embed(x)


@PROGRAMS.register(
    "resize", config=CanvasConfig, help="no program: the image resized to the canvas (reference)"
)
def build_resize(
    config: CanvasConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> ResizeProgram:
    canvas = canvas_side(config, input_shape, source_size)
    if config.inner_size not in (None, canvas):
        raise ValueError("the resize program fills the whole canvas; omit inner_size")
    return ResizeProgram(input_shape, source_size, config, default_inner=canvas)
