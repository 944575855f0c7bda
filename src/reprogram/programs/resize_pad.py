"""``resize-pad``: ILM-VP's padding prompt (Chen et al., CVPR 2023).

The target image is resized to ``inner_size`` (default three quarters of the canvas), padded
to the canvas, and a learned perturbation fills the padding: ``pad(resize(x)) + sigmoid(δ) ⊙ M``.

With ``learn_scale=true`` (AutoVP's learnable input scale, Tsao et al., ICLR 2024) the size of
the image on the canvas trains with the prompt: a scale ``s = sigmoid(a)`` of the canvas side,
starting at ``inner_size / canvas``, places the image by bilinear sampling (differentiable in
``s``), and the prompt covers every pixel the image leaves uncovered at the current scale:
``sample(x; s) + sigmoid(δ) ⊙ (1 − coverage(s))``, ``δ`` ``[C_s, S, S]`` (one more parameter
than the pixels of the canvas, since the border moves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import PROGRAMS
from .base import CanvasConfig, ImageProgram, MaskedPatternProgram, canvas_side


@dataclass
class ResizePadConfig(CanvasConfig):
    """Options of ``resize-pad``."""

    learn_scale: bool = field(
        default=False,
        metadata={
            "help": "AutoVP's learnable input scale: the image's size on the canvas trains "
            "with the prompt (from inner_size), and the prompt covers whatever it leaves free"
        },
    )


class ResizePadProgram(MaskedPatternProgram):
    """Resize, pad, and add ``sigmoid(δ)`` on the padding; ``δ`` ``[C_s, n_border]``."""

    def squash(self, delta: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(delta)


class ScaledPadProgram(ImageProgram):
    """``sample(x; s) + sigmoid(δ) ⊙ (1 − coverage(s))`` with a trained scale ``s``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        start = min(max(self.inner[0] / self.canvas, 0.05), 0.99)
        self.scale_logit = nn.Parameter(torch.tensor(math.log(start / (1.0 - start))))
        self.delta = nn.Parameter(torch.zeros(self.channels, self.canvas, self.canvas))

    def scale(self) -> torch.Tensor:
        """The image's side as a share of the canvas side, a scalar in ``(0, 1)``."""
        return torch.sigmoid(self.scale_logit)

    def _grid(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """Sampling grid ``[B, S, S, 2]``: canvas point ``u`` reads the image at ``u / s``."""
        zoom = 1.0 / self.scale().to(like)
        zero = torch.zeros((), dtype=like.dtype, device=like.device)
        theta = torch.stack(
            [torch.stack([zoom, zero, zero]), torch.stack([zero, zoom, zero])]
        ).expand(batch, 2, 3)
        return F.affine_grid(theta, [batch, 1, self.canvas, self.canvas], align_corners=False)

    def coverage(self, like: torch.Tensor) -> torch.Tensor:
        """Share of each canvas pixel the image covers at the current scale ``[1, 1, S, S]``."""
        ones = torch.ones(1, 1, *self.input_shape[1:], dtype=like.dtype, device=like.device)
        return F.grid_sample(ones, self._grid(1, like), align_corners=False)

    def pattern(self) -> torch.Tensor:
        """The prompt where the image leaves the canvas free ``[C_s, S, S]``."""
        return (torch.sigmoid(self.delta) * (1.0 - self.coverage(self.delta)))[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, C_s, S, S]`` from target images ``[B, C_t, H_t, W_t]``."""
        placed = F.grid_sample(x, self._grid(len(x), x), align_corners=False)
        if placed.shape[1] != self.channels:
            placed = placed.expand(-1, self.channels, -1, -1)
        return placed + self.pattern()

    def describe(self) -> dict[str, object]:
        out = super().describe()
        out["learn_scale"] = True
        out["scale"] = round(float(self.scale().detach()), 4)
        return out


@PROGRAMS.register(
    "resize-pad",
    config=ResizePadConfig,
    help="ILM-VP: resize, pad, learned sigmoid padding (learn_scale: AutoVP's trained size)",
)
def build_resize_pad(
    config: ResizePadConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> ImageProgram:
    canvas = canvas_side(config, input_shape, source_size)
    kind = ScaledPadProgram if config.learn_scale else ResizePadProgram
    return kind(input_shape, source_size, config, default_inner=round(0.75 * canvas))
