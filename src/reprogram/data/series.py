"""Time series as reprogram holds them: float32 ``[N, 1, L]``, shorter series NaN-padded at the end.

A time-series target (``TargetData(modality="series")``) keeps one channel of length ``L``;
series of unequal length are padded *at the end* with NaN (only trailing NaN: a NaN inside a
series is refused by :func:`reprogram.data.checks.check_series`). The helpers here are what
every consumer of such data needs: the valid length of each series, and the valid part
resampled to a common length (what MiniRocket, the series-image program and plots use).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import DataError
from .checks import to_series_float


def valid_lengths(x: torch.Tensor) -> torch.Tensor:
    """Number of leading non-NaN values of each series: ``[N, 1, L]`` (or ``[N, L]``) → ``[N]``.

    Assumes the padding contract (NaN only at the end), which the data checks enforce.
    """
    flat = x.reshape(x.shape[0], -1)
    return (~torch.isnan(flat)).sum(1)


def resample_valid(x: torch.Tensor, length: int) -> torch.Tensor:
    """The valid part of each series linearly resampled to ``length`` points.

    Args:
        x: series ``[N, 1, L]`` (trailing NaN allowed; a series needs one valid value).
        length: points of the output.
    Returns:
        finite series ``[N, 1, length]``, differentiable with respect to ``x``'s valid values.
        Equal-length input at ``length == L`` comes back unchanged (same values). Each
        series' result depends on that series alone, not on the others in the batch.
    """
    n, _, size = x.shape
    lengths = valid_lengths(x)
    if bool((lengths == size).all()):
        if size == length:
            return x
        return F.interpolate(x, size=length, mode="linear", align_corners=True)
    filled = torch.nan_to_num(x, nan=0.0).reshape(n, size)
    # position of each output point inside its own series' valid part
    steps = torch.linspace(0.0, 1.0, length, dtype=x.dtype, device=x.device)
    last = (lengths - 1).clamp(min=0).to(x.dtype)
    pos = steps[None, :] * last[:, None]  # [N, length]
    lo = pos.floor().long().clamp(max=size - 1)
    hi = (lo + 1).clamp(max=(lengths - 1).clamp(min=0)[:, None])
    frac = pos - lo.to(x.dtype)
    a = filled.gather(1, lo)
    b = filled.gather(1, hi)
    out = (a + frac * (b - a)).unsqueeze(1)
    # full-length series as the all-valid branch above treats them, whatever their batch holds
    whole = filled.unsqueeze(1)
    if size != length:
        whole = F.interpolate(whole, size=length, mode="linear", align_corners=True)
    return torch.where((lengths == size)[:, None, None], whole, out)


def znormalise(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each finite series ``[N, 1, L]`` shifted to mean 0 and scaled to standard deviation 1."""
    mean = x.mean(-1, keepdim=True)
    std = x.std(-1, keepdim=True, unbiased=False)
    return (x - mean) / (std + eps)


def pad_to(x: torch.Tensor, length: int) -> torch.Tensor:
    """Series ``[N, 1, L]`` padded at the end with NaN to ``[N, 1, length]`` (``length >= L``)."""
    if x.shape[-1] >= length:
        return x
    return F.pad(x, (0, length - x.shape[-1]), value=float("nan"))


def series_batch(arrays: list[tuple[str, object]], length: int) -> tuple[list[str], torch.Tensor]:
    """New series for ``predict``: one name per series and ``[N, 1, length]`` float32.

    Args:
        arrays: ``(file name, array)`` pairs; an array holds one series ``[L]`` or a batch
            ``[N, L]`` / ``[N, 1, L]`` (NaN only as padding at the end).
        length: the series length ``L`` the model was trained on; shorter series are padded
            at the end with NaN (as unequal-length sets are), longer ones are refused.
    """
    import numpy as np

    names: list[str] = []
    parts: list[torch.Tensor] = []
    for name, arr in arrays:
        arr = np.asarray(arr)
        x = to_series_float(arr[None] if arr.ndim == 1 else arr, name)
        if x.shape[-1] > length:
            longest = int(valid_lengths(x).max())
            if longest > length:
                raise DataError(
                    f"{name}: series of length {longest}, longer than the {length} points this "
                    "model was trained on; cut or resample them to at most that length."
                )
            x = x[..., :length]
        parts.append(pad_to(x, length))
        names += [name] if arr.ndim == 1 else [f"{name}[{i}]" for i in range(len(x))]
    return names, torch.cat(parts) if parts else torch.empty(0, 1, length)
