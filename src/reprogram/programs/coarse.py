"""``coarse``: an additive prompt at a coarse resolution, upsampled to the canvas.

``resize(x) + upsample(θ)`` with ``θ`` ``[C_s, g, g]`` (``g = grid``, 8 by default: 192
parameters for a colour source) upsampled bilinearly to the ``S × S`` canvas. Zeroth-order
optimizers (``rgf``, ``spsa-gc``) need few parameters: their estimates' variance grows with the
number of perturbed parameters, so a full-resolution prompt (``full``: ``3 S²`` of them) is
hopeless through a black box, and this one is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import PROGRAMS
from .base import CanvasConfig, ImageProgram, canvas_side


@dataclass
class CoarseConfig(CanvasConfig):
    """Options of the coarse program."""

    grid: int = field(default=8, metadata={"help": "side of the coarse prompt (g × g per channel)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.grid < 1:
            raise ValueError(f"grid must be at least 1, got {self.grid}")


class CoarseProgram(ImageProgram):
    """``place(x) + upsample(θ)``; ``θ`` ``[C_s, g, g]`` starts at zero."""

    def __init__(self, grid: int, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.grid = int(grid)
        self.theta = nn.Parameter(torch.zeros(self.channels, self.grid, self.grid))

    def pattern(self) -> torch.Tensor:
        """The prompt on the canvas ``[C_s, S, S]``."""
        size = (self.canvas, self.canvas)
        return F.interpolate(self.theta[None], size=size, mode="bilinear", align_corners=False)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, C_s, S, S]``."""
        return self.place(x) + self.pattern()

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "grid": self.grid}


@PROGRAMS.register(
    "coarse", config=CoarseConfig, help="additive prompt at g×g, upsampled (for black boxes)"
)
def build_coarse(
    config: CoarseConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> CoarseProgram:
    canvas = canvas_side(config, input_shape, source_size)
    if config.grid > canvas:
        raise ValueError(f"grid ({config.grid}) cannot exceed the canvas ({canvas} px)")
    default_inner = None if config.inner_size else canvas
    return CoarseProgram(config.grid, input_shape, source_size, config, default_inner=default_inner)
