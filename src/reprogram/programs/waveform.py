"""``waveform``: Voice2Series' program for time series (Yang et al., ICML 2021).

A target series ``x_t`` ``[B, 1, L]`` (shorter series padded at the end with NaN) becomes a
window of ``T`` audio samples at the source's sample rate, and a learned waveform ``θ`` ``[T]``
is added where the mask ``M`` is 1: ``pad(x_t) + M ⊙ θ``.

- ``placement=pad``: each sample of the series is one audio sample, at the window's ``start``
  or ``centre``; zeros elsewhere. ``M`` is 1 outside the series (V2S), or everywhere.
- ``placement=stretch``: the valid part of each series is resampled linearly over
  ``stretch_to`` samples (default: the whole window). With the whole window covered, the V2S
  mask would leave nothing to learn, so ``mask=auto`` puts the program everywhere then.

- ``fit=K`` (pad only): the window is ``K × L`` samples rounded up to ``fit_step`` (320 at
  16 kHz: one Whisper encoder position) instead of the source's second, e.g. a 150-sample
  series with ``fit=4`` sees a 640-sample window: the encoder then runs on 2 positions
  instead of 50, and ``θ`` has ``K - 1`` series lengths of room around the series.

- ``carrier=F`` (Hz): instead of being the waveform, the z-normalised series modulates the
  amplitude of an ``F``-Hz tone (envelope ``1 + z/3``, clamped at 0, times ``amplitude``). A
  series spread over a second has almost all its energy below 20 Hz, where a speech front end
  sees nearly nothing; as an envelope it becomes the loudness over time of a band the model
  hears.

Each series' valid length comes from its trailing NaN: NaN never reaches the source (NaN
samples are replaced by zeros and masked like padding). ``normalize`` z-normalises every
series over its valid samples and scales it to standard deviation ``amplitude``.
``θ`` starts at ``N(0, init_std²)``: a program at exactly zero would get no gradient through
the log-mel clamp and floor of a speech front end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ReprogramError
from . import PROGRAMS


@dataclass
class WaveformConfig:
    """Options of the ``waveform`` program."""

    window: int | None = field(
        default=None,
        metadata={"help": "audio samples the source sees (default: its input size, 1 s)"},
    )
    fit: float = field(
        default=0.0,
        metadata={
            "help": "pad: > 0 sizes the window to `fit` × the series length, rounded up to "
            "`fit_step` samples, instead of the source's 1 s (a step then costs a fraction)"
        },
    )
    fit_step: int = field(
        default=320,
        metadata={"help": "fit: window multiple (320 = one Whisper encoder position at 16 kHz)"},
    )
    placement: str = field(
        default="pad", metadata={"help": "pad: one sample per step; stretch: resample to fill"}
    )
    align: str = field(default="start", metadata={"help": "pad: series at the start or centre"})
    stretch_to: int | None = field(
        default=None, metadata={"help": "stretch: samples the series spans (default: window)"}
    )
    mask: str = field(
        default="auto",
        metadata={
            "help": "outside: program only outside the series (V2S); everywhere; auto: outside "
            "unless the series fills the window"
        },
    )
    normalize: bool = field(
        default=False, metadata={"help": "z-normalise each series (NaN ignored) to `amplitude`"}
    )
    amplitude: float = field(
        default=0.1, metadata={"help": "standard deviation of a normalised series"}
    )
    carrier: float = field(
        default=0.0,
        metadata={
            "help": "Hz; > 0: the z-normalised series modulates the amplitude of a tone of "
            "this frequency (AM, depth 1/3 per σ), so it lands in the speech band as the "
            "loudness envelope a log-mel front end sees; 0: the series is the waveform itself"
        },
    )
    sample_rate: int = field(default=16000, metadata={"help": "carrier: the source's rate"})
    init_std: float = field(default=0.01, metadata={"help": "θ starts at N(0, init_std²)"})
    seed: int = field(default=0, metadata={"help": "seed of θ's initialisation"})

    def __post_init__(self) -> None:
        if self.placement not in ("pad", "stretch"):
            raise ValueError(f"placement must be pad or stretch, got {self.placement!r}")
        if self.align not in ("start", "centre", "center"):
            raise ValueError(f"align must be start or centre, got {self.align!r}")
        if self.mask not in ("auto", "outside", "everywhere"):
            raise ValueError(f"mask must be auto, outside or everywhere, got {self.mask!r}")
        for name in ("window", "stretch_to"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise ValueError(f"{name} must be at least 2 samples, got {value}")
        if self.fit != 0 and self.fit < 1:
            raise ValueError(
                f"fit must be 0 (off) or at least 1 (the series must fit), got {self.fit}"
            )
        if self.fit_step < 1:
            raise ValueError(f"fit_step must be at least 1 sample, got {self.fit_step}")
        if self.fit > 0 and (self.placement != "pad" or self.window is not None):
            raise ValueError(
                "fit sizes the window of placement=pad from the series length; it does not go "
                "with placement=stretch or an explicit window"
            )
        if self.amplitude <= 0 or self.init_std <= 0:
            raise ValueError("amplitude and init_std must be positive")
        if self.carrier < 0 or self.carrier >= self.sample_rate / 2:
            raise ValueError(
                f"carrier must be in [0, {self.sample_rate / 2:g}) Hz (below Nyquist), "
                f"got {self.carrier}"
            )


def valid_lengths(x: torch.Tensor) -> torch.Tensor:
    """Valid length ``[B]`` of series ``[B, L]``: ``L`` minus the trailing NaN run.

    Assumes the data contract: only trailing NaN (an interior NaN counts as valid and is
    zeroed by the program).
    """
    finite = ~torch.isnan(x)
    idx = torch.arange(1, x.shape[-1] + 1, device=x.device)
    return (finite * idx).amax(-1)


def znorm(x: torch.Tensor, valid: torch.Tensor, amplitude: float) -> torch.Tensor:
    """Series ``[B, L]`` (NaN zeroed) z-normalised over their valid samples, ``× amplitude``.

    ``valid`` ``[B, L]`` is 1 on valid samples. A constant series becomes zeros.
    """
    n = valid.sum(-1, keepdim=True).clamp_min(1)
    mean = (x * valid).sum(-1, keepdim=True) / n
    var = (((x - mean) * valid) ** 2).sum(-1, keepdim=True) / n
    return (x - mean) * valid * (amplitude / var.sqrt().clamp_min(1e-8))


class WaveformProgram(nn.Module):
    """``pad(x_t) + M ⊙ θ``: series ``[B, 1, L]`` → waveforms ``[B, T]``; ``θ`` ``[T]``.

    Args:
        input_shape: ``(1, L)`` of one target series.
        window: ``T``, samples in the source's window.
        config: the options.
    """

    plot_kind = "waveform"  # program.png draws waveforms, not images

    def __init__(self, input_shape: tuple[int, ...], window: int, config: WaveformConfig) -> None:
        super().__init__()
        if len(input_shape) != 2 or input_shape[0] != 1:
            raise ReprogramError(
                f"the waveform program takes univariate time series [1, L]; this target's inputs "
                f"have shape {list(input_shape)}. Image targets need an image program "
                "(border, resize-pad, full) and an image source."
            )
        self.length = int(input_shape[1])
        self.window = int(window)
        self.config = config
        if config.placement == "pad" and self.length > self.window:
            raise ReprogramError(
                f"series of length {self.length} do not fit a {self.window}-sample window; use "
                "--program-opt placement=stretch or a larger --program-opt window=…."
            )
        self.span = int(config.stretch_to or self.window) if config.placement == "stretch" else 0
        if self.span > self.window:
            raise ReprogramError(f"stretch_to {self.span} exceeds the window ({self.window}).")
        fills = config.placement == "stretch" and self.span == self.window
        self.mask_mode = (
            config.mask if config.mask != "auto" else ("everywhere" if fills else "outside")
        )
        gen = torch.Generator().manual_seed(config.seed)
        self.theta = nn.Parameter(torch.randn(self.window, generator=gen) * config.init_std)

    def _offset(self, span: torch.Tensor) -> torch.Tensor:
        """Start sample ``[B]`` of a series occupying ``span`` ``[B]`` samples."""
        if self.config.align == "start":
            return torch.zeros_like(span)
        return (self.window - span) // 2

    def place(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pad(x_t) [B, T], series mask [B, T])``: the series in the window, 1 where it lies."""
        if x.dim() == 3:
            x = x[:, 0]
        if x.dim() != 2 or x.shape[-1] != self.length:
            raise ReprogramError(
                f"the waveform program was built for series [B, 1, {self.length}]; got "
                f"{list(x.shape)}."
            )
        lengths = valid_lengths(x)  # [B]
        steps = torch.arange(self.length, device=x.device)
        valid = (steps[None, :] < lengths[:, None]).to(x.dtype)  # [B, L]
        clean = torch.nan_to_num(x, nan=0.0) * valid
        if self.config.carrier > 0:  # envelope 1 + z/3 (clamped at 0), z-normalised series
            clean = (1.0 + znorm(clean, valid, 1.0) / 3.0).clamp_min(0.0) * valid
        elif self.config.normalize:
            clean = znorm(clean, valid, self.config.amplitude)
        if self.config.placement == "pad":
            span = lengths
            out = F.pad(clean, (0, self.window - self.length))
            offset = self._offset(span)
            if bool((offset > 0).any()):
                idx = torch.arange(self.window, device=x.device)[None, :] - offset[:, None]
                inside = (idx >= 0) & (idx < self.length)
                out = torch.gather(out, 1, idx.clamp(0, self.window - 1)) * inside
        else:
            span = torch.full_like(lengths, self.span)
            out = self._stretch(clean, lengths)
        pos = torch.arange(self.window, device=x.device)[None, :]
        start = self._offset(span)[:, None]
        inside = ((pos >= start) & (pos < start + span[:, None])).to(x.dtype)
        if self.config.carrier > 0:
            tone = torch.sin(2 * torch.pi * self.config.carrier / self.config.sample_rate * pos)
            out = self.config.amplitude * out * tone.to(out.dtype)
        return out, inside

    def _stretch(self, clean: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Each series' valid part linearly resampled onto ``span`` samples, placed by ``align``."""
        b = clean.shape[0]
        t = torch.arange(self.span, device=clean.device, dtype=clean.dtype)
        last = (lengths - 1).clamp_min(0).to(clean.dtype)[:, None]  # [B, 1]
        pos = t[None, :] * last / max(self.span - 1, 1)  # [B, span] positions in the series
        lo = pos.floor().long().clamp(0, self.length - 1)
        hi = (lo + 1).clamp(max=self.length - 1)
        frac = pos - lo.to(clean.dtype)
        values = torch.gather(clean, 1, lo) * (1 - frac) + torch.gather(clean, 1, hi) * frac
        out = clean.new_zeros(b, self.window)
        start = int(self._offset(torch.tensor(self.span)).item())
        out[:, start : start + self.span] = values
        return out

    def program_mask(self, inside: torch.Tensor) -> torch.Tensor:
        """``M`` ``[B, T]`` from the series mask: 1 outside the series, or 1 everywhere."""
        if self.mask_mode == "everywhere":
            return torch.ones_like(inside)
        return 1.0 - inside

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, T]`` for series ``[B, 1, L]`` (trailing NaN allowed)."""
        placed, inside = self.place(x)
        return placed + self.program_mask(inside) * self.theta

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The placed series alone ``[B, T]`` (no program)."""
        return self.place(x)[0]

    def pattern(self) -> torch.Tensor:
        """What the program adds around a full-length series: ``M ⊙ θ`` ``[T]``."""
        probe = torch.zeros(1, 1, self.length, device=self.theta.device)
        _, inside = self.place(probe)
        return (self.program_mask(inside) * self.theta)[0]

    def describe(self) -> dict[str, object]:
        """Sizes worth recording in config.json."""
        return {
            "window": self.window,
            "series_length": self.length,
            "placement": self.config.placement,
            "mask_mode": self.mask_mode,
        }


@PROGRAMS.register(
    "waveform", config=WaveformConfig, help="Voice2Series: series in an audio window + M ⊙ θ"
)
def build_waveform(
    config: WaveformConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> WaveformProgram:
    if config.window is None and len(source_size) != 1:
        raise ReprogramError(
            f"the waveform program needs an audio source (input [T]); this source takes "
            f"{list(source_size)}. Use e.g. --source whisper-tiny.en."
        )
    if config.fit > 0:
        window = fitted_window(int(input_shape[-1]), config.fit, config.fit_step)
    else:
        window = int(config.window or source_size[0])
    return WaveformProgram(input_shape, window, config)


def fitted_window(length: int, fit: float, step: int) -> int:
    """``fit × length`` samples rounded up to a multiple of ``step`` (at least ``2 × step``)."""
    return max(2 * step, step * math.ceil(fit * length / step))


__all__ = ["WaveformConfig", "WaveformProgram", "fitted_window", "valid_lengths", "znorm"]
