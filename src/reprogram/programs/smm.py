"""``smm``: sample-specific masks for visual reprogramming (Cai et al., ICML 2024).

The target image is resized to the whole canvas, as in ``full``, and one shared pattern
``θ`` ``[C_s, S, S]`` is added to it, but not everywhere alike: a small convolutional network
reads each image and answers a mask, so that every example gets its own share of the pattern:

    program(x) = place(x) + θ ⊙ up(g(place(x)))

``g`` is a stack of 3×3 convolutions (batch norm, ReLU), widths ``width``, ``2·width``, …,
four blocks, with a 2×2 max-pooling after each of the first ``log2(patch)`` blocks, then a 3×3
convolution to ``mask_channels`` (one mask per source channel, or one for all): a mask
``[B, m, S/patch, S/patch]``. ``up`` repeats each mask value over its ``patch × patch`` block
(patch-wise interpolation), so the mask costs ``(S/patch)²`` values per channel while the
pattern keeps full resolution. ``θ`` starts at zero, so the untrained program is the resized
image. The generator's parameters count among the program's trainable parameters;
``describe()`` records them apart (``generator_parameters``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import PROGRAMS
from .base import CanvasConfig, ImageProgram, canvas_side

#: Convolution blocks of the mask generator before its output layer.
BLOCKS = 4


@dataclass
class MaskConfig(CanvasConfig):
    """Options of ``smm``."""

    patch: int = field(
        default=8,
        metadata={"help": "side of the square block that shares one mask value (1, 2, 4, 8, 16)"},
    )
    mask_channels: int = field(
        default=0,
        metadata={"help": "masks per image: 1 for all channels, or 0 for one per source channel"},
    )
    width: int = field(
        default=8, metadata={"help": "channels of the generator's first layer (doubling after)"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.patch not in (1, 2, 4, 8, 16):
            raise ValueError(f"patch must be 1, 2, 4, 8 or 16 pixels, got {self.patch}")
        if self.mask_channels < 0:
            raise ValueError(
                f"mask_channels must be 0 (automatic) or more, got {self.mask_channels}"
            )
        if not 1 <= self.width <= 256:
            raise ValueError(f"width must lie in 1..256, got {self.width}")


class MaskGenerator(nn.Module):
    """Image ``[B, C, S, S]`` → mask ``[B, m, S/p, S/p]`` (``p = patch``)."""

    def __init__(self, channels: int, out_channels: int, patch: int, width: int) -> None:
        super().__init__()
        pools = int(math.log2(patch))
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(BLOCKS):
            c_out = width * 2**i
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            if i < pools:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        layers.append(nn.Conv2d(c_in, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SampleMaskProgram(ImageProgram):
    """``place(x) + θ ⊙ up(g(place(x)))`` with ``θ`` ``[C_s, S, S]`` and generator ``g``."""

    def __init__(
        self, input_shape: tuple[int, ...], source_size: tuple[int, ...], config: MaskConfig
    ) -> None:
        canvas = canvas_side(config, input_shape, source_size)
        if config.inner_size not in (None, canvas):
            raise ValueError("smm resizes the image to the whole canvas; omit inner_size")
        super().__init__(input_shape, source_size, config, default_inner=canvas)
        if self.canvas % config.patch:
            raise ValueError(
                f"the canvas side ({self.canvas}) must be a multiple of patch ({config.patch}); "
                f"set canvas_size or patch"
            )
        self.patch = config.patch
        masks = config.mask_channels or self.channels
        if masks not in (1, self.channels):
            raise ValueError(
                f"mask_channels must be 1 or the source's {self.channels} channels, got {masks}"
            )
        self.theta = nn.Parameter(torch.zeros(self.channels, self.canvas, self.canvas))
        self.generator = MaskGenerator(self.channels, masks, config.patch, config.width)

    def pattern(self) -> torch.Tensor:
        """The shared pattern ``θ`` ``[C_s, S, S]`` (each example sees it under its mask)."""
        return self.theta

    def masks(self, placed: torch.Tensor) -> torch.Tensor:
        """Per-example masks ``[B, C_s, S, S]`` for placed images ``[B, C_s, S, S]``."""
        small = self.generator(placed)
        if self.patch > 1:
            small = F.interpolate(small, scale_factor=self.patch, mode="nearest")
        return small.expand(-1, self.channels, -1, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, C_s, S, S]`` from target images ``[B, C_t, H_t, W_t]``."""
        placed = self.place(x)
        return placed + self.theta * self.masks(placed)

    def describe(self) -> dict[str, object]:
        out = super().describe()
        out["patch"] = self.patch
        out["generator_parameters"] = sum(p.numel() for p in self.generator.parameters())
        return out


@PROGRAMS.register(
    "smm",
    config=MaskConfig,
    help="Cai et al. 2024: a shared full-image pattern under per-example masks from a small CNN",
)
def build_smm(
    config: MaskConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> SampleMaskProgram:
    return SampleMaskProgram(input_shape, source_size, config)


__all__ = ["MaskConfig", "MaskGenerator", "SampleMaskProgram"]
