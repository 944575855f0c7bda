"""Whisper's log-mel front end in torch, differentiable end to end.

``waveform [B, T]`` at 16 kHz → ``log-mel [B, 80, T // 160]``: ``torch.stft`` (Hann window,
``n_fft`` 400, hop 160, centred with reflection padding), power spectrum, the 80-bin Slaney
mel filterbank of transformers' ``WhisperFeatureExtractor``, ``log10`` of the mel energies
clamped at ``1e-10``, a floor at ``max - 8`` (per example), then ``(x + 4) / 4``. The last
STFT frame is dropped, as the reference does, so ``T`` samples give ``T // 160`` frames.

It equals the reference extractor on frames that do not touch the reference's 30-second
zero padding. Note that a silent (all-zero) input sits on the flat parts of the clamp and of
the floor, so its gradient is zero: programs must not start at exactly zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160
N_MELS = 80


def _hz_to_mel(freq: torch.Tensor) -> torch.Tensor:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    linear = freq / f_sp
    log = min_log_mel + torch.log(freq.clamp_min(1e-10) / min_log_hz) / logstep
    return torch.where(freq >= min_log_hz, log, linear)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    linear = mel * f_sp
    log = min_log_hz * torch.exp(logstep * (mel - min_log_mel))
    return torch.where(mel >= min_log_mel, log, linear)


def mel_filterbank(
    n_freqs: int = N_FFT // 2 + 1,
    n_mels: int = N_MELS,
    sample_rate: int = SAMPLE_RATE,
    f_max: float = 8000.0,
) -> torch.Tensor:
    """Slaney-normalised triangular mel filters ``[n_freqs, n_mels]`` (float32), from 0 Hz.

    The same filters as ``transformers.audio_utils.mel_filter_bank(..., norm="slaney",
    mel_scale="slaney")``, which Whisper's feature extractor uses.
    """
    f64 = torch.float64
    fft_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=f64)
    mels = torch.linspace(0.0, float(_hz_to_mel(torch.tensor(f_max, dtype=f64))), n_mels + 2)
    hz = _mel_to_hz(mels.to(f64))
    diff = hz[1:] - hz[:-1]  # [n_mels + 1]
    slopes = hz[None, :] - fft_freqs[:, None]  # [n_freqs, n_mels + 2]
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    filters = torch.clamp(torch.minimum(down, up), min=0.0)
    filters = filters * (2.0 / (hz[2 : n_mels + 2] - hz[:n_mels]))[None, :]
    return filters.to(torch.float32)


class LogMel(nn.Module):
    """Waveforms ``[B, T]`` (16 kHz, nominally in ``[-1, 1]``) → log-mel ``[B, 80, T//160]``.

    Differentiable with respect to the waveform (no ``abs`` of a complex zero: the power is
    ``re² + im²``).
    """

    # buffers
    window: torch.Tensor
    filters: torch.Tensor

    def __init__(self, n_mels: int = N_MELS) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer(
            "filters", mel_filterbank(n_mels=n_mels).T.contiguous(), persistent=False
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Log-mel features ``[B, n_mels, T // 160]`` of ``waveform`` ``[B, T]``."""
        stft = torch.stft(
            waveform, N_FFT, HOP, window=self.window, center=True, return_complex=True
        )
        spec = torch.view_as_real(stft[..., :-1])  # [B, F, frames, 2]
        power = spec.pow(2).sum(-1)  # [B, F, frames]
        mel = torch.matmul(self.filters, power)  # [B, n_mels, frames]
        log = torch.clamp(mel, min=1e-10).log10()
        peak = log.amax(dim=(1, 2), keepdim=True)
        log = torch.maximum(log, peak - 8.0)
        return (log + 4.0) / 4.0


def frames_for(samples: int) -> int:
    """Number of log-mel frames for ``samples`` samples (``samples // 160``)."""
    return samples // HOP


__all__ = ["HOP", "N_FFT", "N_MELS", "SAMPLE_RATE", "LogMel", "frames_for", "mel_filterbank"]
