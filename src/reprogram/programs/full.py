"""``full``: an additive visual prompt over the whole resized image (Bahng et al., 2022)."""

from __future__ import annotations

import torch
from torch import nn

from . import PROGRAMS
from .base import CanvasConfig, ImageProgram, canvas_side


class FullProgram(ImageProgram):
    """``resize(x) + θ`` with ``θ`` ``[C_s, S, S]`` over every pixel, starting at zero."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.theta = nn.Parameter(torch.zeros(self.channels, self.canvas, self.canvas))

    def pattern(self) -> torch.Tensor:
        return self.theta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, C_s, S, S]``."""
        return self.place(x) + self.theta


@PROGRAMS.register("full", config=CanvasConfig, help="Bahng et al.: additive prompt on every pixel")
def build_full(
    config: CanvasConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> FullProgram:
    canvas = canvas_side(config, input_shape, source_size)
    if config.inner_size not in (None, canvas):
        raise ValueError("the full program resizes the image to the whole canvas; omit inner_size")
    return FullProgram(input_shape, source_size, config, default_inner=canvas)
