"""``series-image``: a time series drawn as a picture for an image source, plus a visual prompt.

So the same ``ucr:`` task runs on an image model (``efficientnet-lite0``) as on a speech
model (``waveform`` program), and the two source modalities compare on one task.

A series ``[B, 1, L]`` (shorter ones NaN-padded at the end) has its valid part resampled to
``resolution`` points ``s`` and scaled to ``[-1, 1]`` (min–max; z-normalising first changes
nothing), then drawn as an ``n × n`` grey image (``n = resolution``), differentiably:

- ``image=gaf``: Gramian angular summation field, ``cos(φᵢ + φⱼ)`` with ``φ = arccos s``
  (Wang & Oates 2015), written without ``arccos`` as ``sᵢsⱼ − √(1−sᵢ²)√(1−sⱼ²)``;
- ``image=recurrence``: unthresholded recurrence plot, ``1 − |sᵢ − sⱼ| / 2``;
- ``image=line``: a soft rasterised line plot, column ``j`` a Gaussian bump at height ``sⱼ``.

The image is then placed on the source's canvas by an image program that adds the learned
prompt: ``prompt=full`` (Bahng et al.: the image fills the canvas, the prompt covers every
pixel) or ``prompt=resize-pad`` (ILM-VP: the image in the centre, ``sigmoid(δ)`` on the
padding). Only the prompt is trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..data.series import resample_valid
from ..errors import ReprogramError
from . import PROGRAMS
from .base import MAX_CANVAS, CanvasConfig, check_side
from .full import FullProgram
from .resize_pad import ResizePadProgram

IMAGES = ("gaf", "recurrence", "line")
PROMPTS = {"full": (FullProgram, 1.0), "resize-pad": (ResizePadProgram, 0.75)}


@dataclass
class SeriesImageConfig:
    """Options of the ``series-image`` program."""

    image: str = field(default="gaf", metadata={"help": "gaf | recurrence | line"})
    resolution: int = field(
        default=64, metadata={"help": "points the series is resampled to (the image side)"}
    )
    prompt: str = field(default="full", metadata={"help": "full | resize-pad (learned prompt)"})
    canvas_size: int | None = field(
        default=None, metadata={"help": "side of the image the source sees (default: its own)"}
    )
    inner_size: int | None = field(
        default=None, metadata={"help": "resize-pad: side of the drawn series on the canvas"}
    )

    def __post_init__(self) -> None:
        if self.image not in IMAGES:
            raise ValueError(f"image must be one of {', '.join(IMAGES)}, got {self.image!r}")
        if self.prompt not in PROMPTS:
            raise ValueError(f"prompt must be one of {', '.join(PROMPTS)}, got {self.prompt!r}")
        if not 2 <= self.resolution <= MAX_CANVAS:
            raise ValueError(f"resolution must be from 2 to {MAX_CANVAS}, got {self.resolution}")
        for name in ("canvas_size", "inner_size"):
            check_side(name, getattr(self, name))


def unit_range(s: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Finite series ``[B, 1, n]`` min–max scaled to ``[-1, 1]`` (a constant series → 0)."""
    low = s.amin(-1, keepdim=True)
    high = s.amax(-1, keepdim=True)
    return (2.0 * (s - low) / (high - low).clamp(min=eps) - 1.0).clamp(-1.0, 1.0)


def draw(s: torch.Tensor, image: str) -> torch.Tensor:
    """Series ``[B, 1, n]`` scaled to ``[-1, 1]`` → grey images ``[B, 1, n, n]`` in ``[0, 1]``."""
    row, col = s.transpose(1, 2), s  # [B, n, 1], [B, 1, n]
    if image == "gaf":
        root = (1.0 - s * s).clamp(min=1e-6).sqrt()
        field_ = row * col - root.transpose(1, 2) * root
        return ((field_ + 1.0) / 2.0).clamp(0.0, 1.0).unsqueeze(1)
    if image == "recurrence":
        return (1.0 - (row - col).abs() / 2.0).unsqueeze(1)
    n = s.shape[-1]
    heights = torch.linspace(1.0, -1.0, n, dtype=s.dtype, device=s.device).view(1, n, 1)
    width = 2.0 / n  # about one pixel
    return torch.exp(-0.5 * ((heights - col) / width) ** 2).unsqueeze(1)


class SeriesImageProgram(nn.Module):
    """Series ``[B, 1, L]`` → source pixels ``[B, C_s, S, S]``: drawn image + learned prompt.

    ``prompt`` is the image program (``full`` or ``resize-pad``) that places the drawn
    ``[B, 1, n, n]`` image on the canvas and holds every trained parameter.
    """

    def __init__(
        self, config: SeriesImageConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
    ) -> None:
        super().__init__()
        if len(input_shape) != 2 or input_shape[0] != 1:
            raise ReprogramError(
                f"series-image draws univariate time series [1, L]; this target's inputs have "
                f"shape {tuple(input_shape)} (image targets use border, resize-pad or full)."
            )
        if len(source_size) != 3:
            raise ReprogramError(
                f"series-image feeds an image source [C, H, W]; this source takes "
                f"{tuple(source_size)} (for an audio source use the waveform program)."
            )
        self.image = config.image
        self.resolution = int(config.resolution)
        program, share = PROMPTS[config.prompt]
        canvas = int(config.canvas_size or source_size[1])
        inner = config.inner_size if config.prompt != "full" else None
        if config.prompt == "full" and config.inner_size not in (None, canvas):
            raise ValueError("prompt=full fills the canvas with the image; omit inner_size")
        self.prompt = program(
            (1, self.resolution, self.resolution),
            tuple(source_size),
            CanvasConfig(canvas_size=canvas, inner_size=inner),
            default_inner=round(share * canvas),
        )

    def draw(self, x: torch.Tensor) -> torch.Tensor:
        """Series ``[B, 1, L]`` (trailing NaN allowed) → grey images ``[B, 1, n, n]``."""
        return draw(unit_range(resample_valid(x, self.resolution)), self.image)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The drawn series on the canvas without the prompt, ``[B, C_s, S, S]``."""
        return self.prompt.embed(self.draw(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Source pixels ``[B, C_s, S, S]`` for series ``[B, 1, L]``."""
        return self.prompt(self.draw(x))

    def describe(self) -> dict[str, object]:
        return {"image_side": self.resolution, **self.prompt.describe()}


@PROGRAMS.register(
    "series-image",
    config=SeriesImageConfig,
    help="time series drawn as an image (GAF, recurrence or line) + a learned visual prompt",
)
def build_series_image(
    config: SeriesImageConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> SeriesImageProgram:
    return SeriesImageProgram(config, input_shape, source_size)
