"""Forecasting modules: ``[B, 1, L]`` lookback windows → ``[B, H]`` forecasts.

- :class:`InstanceNorm`: RevIN without the affine part (Kim et al., ICLR 2022): each window
  is shifted and scaled by its own mean and standard deviation, and the forecast scaled back.
- :func:`patches`: PatchTST's patching (Nie et al., ICLR 2023): windows of ``length`` values
  every ``stride`` steps, the series padded at the end by ``stride`` copies of its last value.
- :class:`SeasonalNaive`: the value one season earlier (no parameters).
- :class:`DLinear` (Zeng et al., AAAI 2023): a moving-average trend and the remainder, each
  through one linear layer ``L → H``.
- :class:`RevINLinear`: one linear layer ``L → H`` between instance normalisation (RLinear).
- :class:`PatchTST`: patches embedded, a small transformer encoder over them, a flat head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-5


class InstanceNorm(nn.Module):
    """Per-window statistics of ``x`` ``[B, 1, L]``: :meth:`forward` normalises, :meth:`undo`
    maps forecasts ``[B, H]`` back with the same window's mean and standard deviation."""

    @staticmethod
    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation ``[B, 1]`` of each window ``[B, 1, L]``."""
        flat = x.reshape(x.shape[0], -1)
        mean = flat.mean(1, keepdim=True)
        std = torch.sqrt(flat.var(1, keepdim=True, unbiased=False) + EPS)
        return mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, 1, L]`` normalised per window, ``[B, L]``."""
        mean, std = self.stats(x)
        return (x.reshape(x.shape[0], -1) - mean) / std

    def undo(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Forecasts ``y`` ``[B, H]`` made on normalised ``x`` ``[B, 1, L]``, scaled back."""
        mean, std = self.stats(x)
        return y * std + mean


def patch_count(length: int, patch: int, stride: int) -> int:
    """How many patches :func:`patches` cuts from ``length`` values."""
    if patch > length + stride:
        raise ValueError(f"patch length {patch} is longer than the lookback {length} (+ stride)")
    return (length + stride - patch) // stride + 1


def patches(x: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """``x`` ``[B, L]`` → ``[B, P, patch]``, the end padded with ``stride`` copies of the last
    value."""
    padded = torch.cat([x, x[:, -1:].expand(-1, stride)], dim=1)
    return padded.unfold(1, patch, stride)


class SeasonalNaive(nn.Module):
    """Forecast each step as the value ``season`` steps earlier (the last season repeated)."""

    def __init__(self, lookback: int, horizon: int, season: int) -> None:
        super().__init__()
        if not 1 <= season <= lookback:
            raise ValueError(f"season {season} must lie in [1, lookback {lookback}]")
        self.horizon, self.season = horizon, season

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = x.reshape(x.shape[0], -1)[:, -self.season :]
        reps = math.ceil(self.horizon / self.season)
        return last.repeat(1, reps)[:, : self.horizon]


class DLinear(nn.Module):
    """DLinear: trend = moving average (``kernel``, edges replicated), remainder = seasonal;
    ``forecast = W_t·trend + W_s·seasonal``, one weight pair shared by every variable."""

    def __init__(self, lookback: int, horizon: int, kernel: int = 25) -> None:
        super().__init__()
        self.kernel = kernel
        self.trend = nn.Linear(lookback, horizon)
        self.seasonal = nn.Linear(lookback, horizon)
        for layer in (self.trend, self.seasonal):  # DLinear starts from the mean of the window
            nn.init.constant_(layer.weight, 1.0 / lookback)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        front = (self.kernel - 1) // 2
        back = self.kernel - 1 - front
        padded = torch.cat(
            [flat[:, :1].expand(-1, front), flat, flat[:, -1:].expand(-1, back)], dim=1
        )
        trend = F.avg_pool1d(padded.unsqueeze(1), self.kernel, stride=1).squeeze(1)
        return self.trend(trend) + self.seasonal(flat - trend)


class RevINLinear(nn.Module):
    """One linear layer ``L → H`` on instance-normalised windows, scaled back (RLinear)."""

    def __init__(self, lookback: int, horizon: int) -> None:
        super().__init__()
        self.norm = InstanceNorm()
        self.linear = nn.Linear(lookback, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm.undo(self.linear(self.norm(x)), x)


class PatchTST(nn.Module):
    """PatchTST (channel-independent, supervised): instance norm, patches embedded to
    ``width`` with learned positions, ``layers`` transformer encoder blocks, a flat linear
    head over every patch's state."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        patch: int = 16,
        stride: int = 8,
        width: int = 16,
        heads: int = 4,
        layers: int = 3,
        ff: int = 128,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.patch, self.stride = patch, stride
        count = patch_count(lookback, patch, stride)
        self.norm = InstanceNorm()
        self.embed = nn.Linear(patch, width)
        self.position = nn.Parameter(torch.empty(1, count, width).uniform_(-0.02, 0.02))
        self.drop = nn.Dropout(dropout)
        block = nn.TransformerEncoderLayer(
            width, heads, ff, dropout, batch_first=True, activation="gelu"
        )
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(count * width, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = patches(self.norm(x), self.patch, self.stride)  # [B, P, patch]
        h = self.encoder(self.drop(self.embed(z) + self.position))
        return self.norm.undo(self.head(h.flatten(1)), x)
