"""Shared machinery of image programs: grey→RGB, resize, centre placement and masks.

A program maps target inputs ``x`` ``[B, C_t, H_t, W_t]`` (values in ``[0, 1]``) to source
pixels ``[B, C_s, S, S]`` (nominally in ``[0, 1]``); the source applies its own normalisation.
The canvas side ``S`` defaults to the source's pretrained input size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ReprogramError

#: Largest canvas side an option may ask for, in pixels: a 4096-pixel RGB canvas is 200 MB a
#: float32 image, already past any source's pretrained size (ImageNet models take 224-600).
MAX_CANVAS = 4096


def check_side(name: str, value: int | None) -> None:
    """A canvas or inner side option must be a whole number of pixels in 1 … MAX_CANVAS."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number of pixels, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive number of pixels, got {value}")
    if value > MAX_CANVAS:
        raise ValueError(
            f"{name} must be at most {MAX_CANVAS} pixels, got {value} (sources take 224-600; "
            "a larger canvas only costs memory)"
        )


@dataclass
class CanvasConfig:
    """Options shared by image programs."""

    canvas_size: int | None = field(
        default=None,
        metadata={"help": "side of the square image the source sees (default: its input size)"},
    )
    inner_size: int | None = field(
        default=None,
        metadata={"help": "side the target image is resized to inside the canvas"},
    )

    def __post_init__(self) -> None:
        for name in ("canvas_size", "inner_size"):
            check_side(name, getattr(self, name))


def canvas_side(
    config: CanvasConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> int:
    """The canvas side ``S`` an image program draws on, after checking both shapes are images.

    Raises a :class:`ReprogramError` naming the program to use instead when the target is a
    series (``[1, L]``) or the source is not an image model (a waveform source's ``[T]``).
    """
    if len(input_shape) != 3:
        advice = (
            "sequences of symbols [L] are read by a language source's token programs: "
            "`dictionary`, `soft-prompt` or `text` (with --source minilm-l6)"
            if len(input_shape) == 1
            else "`series-image` draws a series into an image for this source"
            if len(source_size) == 3
            else "`waveform` or `sonify` plays a series to an audio source"
        )
        raise ReprogramError(
            f"image programs take images [C, H, W]; this target's inputs have shape "
            f"{list(input_shape)}. {advice[0].upper()}{advice[1:]} (or leave --program out: "
            f"it is chosen from the shapes)."
        )
    if len(source_size) != 3:
        raise ReprogramError(
            f"image programs need an image source (input [C, H, W]); this source takes "
            f"{list(source_size)}. Use an image source such as efficientnet-lite0."
        )
    return int(config.canvas_size or source_size[1])


class ImageProgram(nn.Module):
    """Base of image programs: places a target image on the source's canvas.

    Args:
        input_shape: ``(C_t, H_t, W_t)`` of one target input.
        source_size: ``(C_s, H_s, W_s)`` the source expects.
        config: canvas options.
        default_inner: inner side when ``config.inner_size`` is None (``None`` keeps the
            target's own size, the Elsayed et al. choice).
    """

    mask: torch.Tensor  # buffer [S, S]: 1 on the border, 0 under the image

    def __init__(
        self,
        input_shape: tuple[int, ...],
        source_size: tuple[int, ...],
        config: CanvasConfig,
        default_inner: int | None,
    ) -> None:
        super().__init__()
        self.canvas = canvas_side(config, input_shape, source_size)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.channels = int(source_size[0])
        c_t, h_t, w_t = self.input_shape
        if c_t not in (1, self.channels):
            raise ReprogramError(
                f"the target has {c_t} channels and the source takes {self.channels}: only grey "
                f"(1) or matching inputs can be reprogrammed."
            )
        if config.inner_size is not None:
            inner = (int(config.inner_size), int(config.inner_size))
        elif default_inner is not None:
            inner = (default_inner, default_inner)
        else:
            inner = (h_t, w_t)
        if max(inner) > self.canvas:
            raise ReprogramError(
                f"the target image ({inner[0]}×{inner[1]}) does not fit the {self.canvas}-pixel "
                f"canvas: set a smaller inner_size or a larger canvas_size."
            )
        self.inner = inner
        top = (self.canvas - inner[0]) // 2
        left = (self.canvas - inner[1]) // 2
        # F.pad order: (left, right, top, bottom)
        self.padding = (left, self.canvas - inner[1] - left, top, self.canvas - inner[0] - top)
        mask = torch.ones(self.canvas, self.canvas)
        mask[top : top + inner[0], left : left + inner[1]] = 0
        self.register_buffer("mask", mask, persistent=False)

    def place(self, x: torch.Tensor, pad: bool = True) -> torch.Tensor:
        """``embed(x)`` without its copy: ``[B, C_s, S, S]``, possibly a broadcast view.

        A grey image is resized and padded on its one channel and only then broadcast to the
        source's channels (stride 0, no copy): the same pixels as resizing three identical
        channels, for a third of the work. Programs add their pattern to this, which writes the
        full-size tensor once. May return ``x`` itself when there is nothing to do.
        """
        if tuple(x.shape[-2:]) != self.inner:
            x = F.interpolate(x, size=self.inner, mode="bilinear", align_corners=False)
        if pad and any(self.padding):
            x = F.pad(x, self.padding)
        if x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        return x

    def embed(self, x: torch.Tensor, pad: bool = True) -> torch.Tensor:
        """``[B, C_t, H_t, W_t]`` → ``[B, C_s, S, S]`` (or the inner size when ``pad`` is False).

        A new contiguous tensor, except that ``x`` itself comes back when ``pad`` is False and
        it already has the source's channels and the inner size.
        """
        out = self.place(x, pad)
        if out is x:
            return x.clone(memory_format=torch.contiguous_format) if pad else x
        return out.contiguous()

    def border_index(self) -> torch.Tensor:
        """Flat indices ``[n]`` of canvas pixels outside the image (where the mask is 1)."""
        return torch.nonzero(self.mask.flatten(), as_tuple=False).flatten()

    def pattern(self) -> torch.Tensor:
        """The program's own contribution ``[C_s, S, S]`` (what it adds to a blank input)."""
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        """Sizes worth recording in config.json."""
        return {"canvas_size": self.canvas, "inner_size": list(self.inner)}


class MaskedPatternProgram(ImageProgram):
    """A program whose parameters live only on the border (mask = 1) of the canvas.

    Parameters are stored as ``delta`` ``[C_s, n_border]``; nothing is stored (or counted)
    under the image. Subclasses choose the squashing function.
    """

    index: torch.Tensor  # buffer [n_border]: flat canvas indices of the border

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        index = self.border_index()
        self.register_buffer("index", index, persistent=False)
        self.delta = nn.Parameter(torch.zeros(self.channels, index.numel()))

    def squash(self, delta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pattern(self) -> torch.Tensor:
        flat = self.delta.new_zeros(self.channels, self.canvas * self.canvas)
        flat = flat.index_copy(1, self.index, self.squash(self.delta))
        return flat.view(self.channels, self.canvas, self.canvas)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, C_s, S, S]``: the embedded image plus the border program."""
        return self.place(x) + self.pattern()
