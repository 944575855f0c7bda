"""``sonify``: a time series heard as a melody (frequency modulation), plus a learned waveform.

Voice2Series' ``waveform`` program plays a series as raw audio samples. A UCR series of a few
hundred points then lasts a few tens of milliseconds at 16 kHz: one or two frames of a speech
front end, which keeps the series' spectrum and loses its shape over time. ``sonify`` turns
the series into a tone whose pitch follows it instead, spread over the whole window:

    f(t)   = f0 · 2^(octaves · clamp(z(t), ±clip))     (z: the series z-normalised, resampled
                                                        linearly onto the window's T samples)
    s(t)   = amplitude · sin(2π Σ_{τ≤t} f(τ) / rate)
    out(t) = s(t) + θ(t)

A log-mel spectrogram of ``s`` is a picture of the series: a bright line whose height (in
mel, nearly log-frequency above 1 kHz) traces its values over time, which is what a speech
encoder is built to follow. The defaults (800 Hz, one octave per standard deviation, ±3σ)
keep the tone between 100 Hz and 6.4 kHz, inside Whisper's band. ``θ`` ``[T]`` is added
everywhere (the tone fills the window), starting at ``N(0, init_std²)``.

``raw=K`` (> 0) adds Voice2Series' own view in front of the tone: the raw series padded into a
window of ``K × L`` samples (``waveform``'s ``fit=K``, with its own ``M ⊙ θ`` around the
series). The two views keep what each hears best: the tone the series' shape over time, the
raw window its spectrum (engine noise in FordA, where the tone alone loses 13 points). They
are encoded one after the other by a source that supports views (Whisper's ``features:``
view), whose features are then the two pooled views side by side.

``diff=true`` adds a third kind of view after the tone: the series' first difference
``x[t+1] − x[t]`` as a tone of its own (z-normalised and pitched the same way, with its own
``θ_d``), the view of a series that MultiRocket and Hydra add to theirs. It needs a source that
encodes views apart (Whisper's ``features:``).

Series ``[B, 1, L]`` may end in NaN (unequal lengths): each series' valid part is stretched
over the window, so every series becomes a ``T``-sample tone. A constant series is a steady
``f0`` tone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ReprogramError
from . import PROGRAMS
from .waveform import WaveformConfig, WaveformProgram, fitted_window, valid_lengths, znorm


@dataclass
class SonifyConfig:
    """Options of the ``sonify`` program."""

    window: int | None = field(
        default=None,
        metadata={"help": "audio samples the source sees (default: its input size, 1 s)"},
    )
    f0: float = field(default=800.0, metadata={"help": "Hz of the tone at the series' mean"})
    octaves: float = field(
        default=1.0, metadata={"help": "octaves the pitch moves per standard deviation"}
    )
    clip: float = field(default=3.0, metadata={"help": "z-scores clamped to ± this"})
    amplitude: float = field(default=0.1, metadata={"help": "peak of the tone"})
    raw: float = field(
        default=0.0,
        metadata={
            "help": "> 0: also the raw series padded into a window of raw × its length (V2S's "
            "waveform, fit=raw), encoded as a second view (needs features:whisper-…)"
        },
    )
    diff: bool = field(
        default=False,
        metadata={
            "help": "also the series' first difference as a second tone, one more view "
            "(needs features:whisper-…)"
        },
    )
    sample_rate: int = field(default=16000, metadata={"help": "the source's sample rate"})
    init_std: float = field(default=0.01, metadata={"help": "θ starts at N(0, init_std²)"})
    seed: int = field(default=0, metadata={"help": "seed of θ's initialisation"})

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 2:
            raise ValueError(f"window must be at least 2 samples, got {self.window}")
        if self.f0 <= 0 or self.octaves < 0 or self.clip <= 0:
            raise ValueError("f0 and clip must be positive and octaves non-negative")
        if self.raw != 0 and self.raw < 1:
            raise ValueError(
                f"raw must be 0 (off) or at least 1 (the series must fit), got {self.raw}"
            )
        if self.amplitude <= 0 or self.init_std <= 0 or self.sample_rate <= 0:
            raise ValueError("amplitude, init_std and sample_rate must be positive")
        top = self.f0 * 2 ** (self.octaves * self.clip)
        if top >= self.sample_rate / 2:
            raise ValueError(
                f"the highest pitch f0 · 2^(octaves · clip) = {top:g} Hz must stay below "
                f"Nyquist ({self.sample_rate / 2:g} Hz); lower f0, octaves or clip"
            )


class SonifyProgram(nn.Module):
    """``sin(2π Σ f0·2^(octaves·z)/rate) + θ``: series ``[B, 1, L]`` → waveforms ``[B, T]``.

    With ``raw`` > 0 the output is ``[B, T_raw + T_tone]``: the raw view, then the tone;
    ``views`` says so (``(T_raw, T_tone)``) to the source, which encodes them apart. With
    ``diff`` the first difference's tone follows (``[B, … + T_tone]``, one more view).

    Args:
        input_shape: ``(1, L)`` of one target series.
        window: ``T_tone``, samples of the tone (the source's window by default).
        config: the options.
    """

    plot_kind = "waveform"  # program.png draws waveforms, not images
    mask_mode = "everywhere"

    def __init__(self, input_shape: tuple[int, ...], window: int, config: SonifyConfig) -> None:
        super().__init__()
        if len(input_shape) != 2 or input_shape[0] != 1:
            raise ReprogramError(
                f"the sonify program takes univariate time series [1, L]; this target's inputs "
                f"have shape {list(input_shape)}. Image targets need an image program "
                "(border, resize-pad, full) and an image source."
            )
        self.length = int(input_shape[1])
        self.tone_window = int(window)
        self.config = config
        gen = torch.Generator().manual_seed(config.seed)
        self.theta = nn.Parameter(torch.randn(self.tone_window, generator=gen) * config.init_std)
        self.theta_diff: nn.Parameter | None = None
        if config.diff:
            if self.length < 3:
                raise ReprogramError(
                    f"diff=true needs series of at least 3 points; these have {self.length}."
                )
            start = torch.randn(self.tone_window, generator=gen) * config.init_std
            self.theta_diff = nn.Parameter(start)
        self.raw: WaveformProgram | None = None
        views: list[int] = [self.tone_window]
        if config.raw > 0:
            raw_cfg = WaveformConfig(fit=config.raw, init_std=config.init_std, seed=config.seed + 1)
            raw_window = fitted_window(self.length, config.raw, raw_cfg.fit_step)
            self.raw = WaveformProgram(tuple(input_shape), raw_window, raw_cfg)
            views.insert(0, raw_window)
        if config.diff:
            views.append(self.tone_window)
        self.views: tuple[int, ...] | None = tuple(views) if len(views) > 1 else None
        self.window = sum(views)

    def _series(self, x: torch.Tensor) -> torch.Tensor:
        """Series ``[B, 1, L]`` or ``[B, L]`` → ``[B, L]``, checked against the built length."""
        if x.dim() == 3:
            x = x[:, 0]
        if x.dim() != 2 or x.shape[-1] != self.length:
            raise ReprogramError(
                f"the sonify program was built for series [B, 1, {self.length}]; got "
                f"{list(x.shape)}."
            )
        return x

    def pitch(self, x: torch.Tensor) -> torch.Tensor:
        """Instantaneous frequency ``[B, T]`` in Hz of series ``[B, 1, L]`` (trailing NaN ok)."""
        return self._pitch(self._series(x))

    def _pitch(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`pitch` of series ``[B, L']`` of any length ``L'`` (the difference: ``L − 1``)."""
        length = x.shape[-1]
        lengths = valid_lengths(x).clamp_min(1)  # [B]
        steps = torch.arange(length, device=x.device)
        valid = (steps[None, :] < lengths[:, None]).to(x.dtype)
        z = znorm(torch.nan_to_num(x, nan=0.0) * valid, valid, 1.0)
        z = z.clamp(-self.config.clip, self.config.clip)
        # Each series' valid part resampled linearly onto the window's T samples.
        t = torch.arange(self.tone_window, device=x.device, dtype=x.dtype)
        last = (lengths - 1).to(x.dtype)[:, None]  # [B, 1]
        pos = t[None, :] * last / max(self.tone_window - 1, 1)  # [B, T]
        lo = pos.floor().long().clamp(0, length - 1)
        hi = (lo + 1).clamp(max=length - 1)
        frac = pos - lo.to(x.dtype)
        zt = torch.gather(z, 1, lo) * (1 - frac) + torch.gather(z, 1, hi) * frac
        return self.config.f0 * torch.pow(2.0, self.config.octaves * zt)

    def tone(self, x: torch.Tensor) -> torch.Tensor:
        """The series as a tone ``[B, T_tone]``, without the program."""
        return self._tone(self._pitch(self._series(x)))

    def diff_tone(self, x: torch.Tensor) -> torch.Tensor:
        """The series' first difference as a tone ``[B, T_tone]`` (NaN padding stays at the end)."""
        x = self._series(x)
        return self._tone(self._pitch(x[:, 1:] - x[:, :-1]))

    def _tone(self, freq: torch.Tensor) -> torch.Tensor:
        phase = torch.cumsum(2 * math.pi * freq.double() / self.config.sample_rate, dim=-1)
        tone = self.config.amplitude * torch.sin(torch.remainder(phase, 2 * math.pi))
        return tone.to(self.theta.dtype)

    def _tones(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The tone of ``x``, then (with ``diff``) that of its difference: ``[B, T_tone]`` each."""
        tones = [self.tone(x)]
        if self.theta_diff is not None:
            tones.append(self.diff_tone(x))
        return tones

    def _thetas(self) -> list[nn.Parameter]:
        """The learned waveform of each tone, in the order of :meth:`_tones`."""
        return [self.theta] + ([self.theta_diff] if self.theta_diff is not None else [])

    def place(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(series as heard [B, T], where it lies [B, T])`` (a tone lies everywhere)."""
        parts = self._tones(x)
        masks = [torch.ones_like(t) for t in parts]
        if self.raw is not None:
            placed, inside = self.raw.place(x)
            parts, masks = [placed, *parts], [inside, *masks]
        return torch.cat(parts, -1), torch.cat(masks, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Waveforms ``[B, T]`` for series ``[B, 1, L]`` (trailing NaN allowed)."""
        parts = [t + theta for t, theta in zip(self._tones(x), self._thetas(), strict=True)]
        if self.raw is not None:  # the raw view carries its own M ⊙ θ
            parts.insert(0, self.raw(x))
        return torch.cat(parts, -1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The series as heard ``[B, T]`` (no program)."""
        return self.place(x)[0]

    def pattern(self) -> torch.Tensor:
        """What the program adds around a full-length series ``[T]``."""
        raw = [self.raw.pattern()] if self.raw is not None else []
        return torch.cat([*raw, *self._thetas()])

    def describe(self) -> dict[str, object]:
        """Sizes worth recording in config.json."""
        c = self.config
        return {
            "window": self.window,
            "views": list(self.views) if self.views else None,
            "series_length": self.length,
            "pitch_range_hz": [c.f0 * 2 ** (-c.octaves * c.clip), c.f0 * 2 ** (c.octaves * c.clip)],
        }


@PROGRAMS.register(
    "sonify", config=SonifyConfig, help="a series as a tone whose pitch follows it (FM) + θ"
)
def build_sonify(
    config: SonifyConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> SonifyProgram:
    if config.window is None and len(source_size) != 1:
        raise ReprogramError(
            f"the sonify program needs an audio source (input [T]); this source takes "
            f"{list(source_size)}. Use e.g. --source whisper-tiny.en."
        )
    return SonifyProgram(input_shape, int(config.window or source_size[0]), config)


__all__ = ["SonifyConfig", "SonifyProgram"]
