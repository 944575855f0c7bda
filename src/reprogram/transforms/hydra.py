"""Hydra (Dempster, Schmidt & Webb, DMKD 2023) and MultiRocket + Hydra feature transforms.

Hydra convolves each series, and its first difference, with groups of ``k`` random kernels at
every dilation ``2^0 .. 2^E``; at each time point the kernels of a group compete: the
best-matching kernel gains its response ("soft" count of maxima) and the worst-matching one
gains 1 ("hard" count of minima). The counts, square-rooted and standardised by a sparse
scaler (zeros stay zero), are the features. ``multirocket-hydra`` puts aeon's MultiRocket
features (the series and its difference, four pooling operators per kernel) beside Hydra's.
The kernels are drawn from a generator seeded with the run's seed (the global torch RNG is
untouched). Shared by the ``hydra``/``multirocket-hydra`` baselines and ``side=hydra``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ReprogramError
from .base import TRANSFORMS, chain_post_init
from .minirocket import KERNEL_LENGTH, KERNELS, dilation_count, prepare_series

SCALER_EXPONENT = 4  # the sparse scaler's epsilon: (fraction of zeros) ** 4


@dataclass
class HydraFeatureOptions:
    """Options of the Hydra transform (the ``hydra`` baseline adds its head's)."""

    kernels: int = field(default=8, metadata={"help": "kernels per group (k)"})
    groups: int = field(default=64, metadata={"help": "groups per dilation (g)"})

    def __post_init__(self) -> None:
        if self.kernels < 2 or self.groups < 1:
            raise ValueError(
                f"hydra needs at least 2 kernels per group and 1 group, got "
                f"kernels={self.kernels}, groups={self.groups}"
            )
        chain_post_init(super())


@dataclass
class MultiRocketHydraFeatureOptions(HydraFeatureOptions):
    """Options of the MultiRocket + Hydra transform."""

    n_kernels: int = field(
        default=6_250, metadata={"help": "MultiRocket kernels (features: 8 x multiple of 84)"}
    )
    max_dilations: int = field(default=32, metadata={"help": "MultiRocket: most dilations"})

    def __post_init__(self) -> None:
        if self.n_kernels < KERNELS or self.max_dilations < 1:
            raise ValueError(
                f"multirocket-hydra needs n_kernels >= {KERNELS} and max_dilations >= 1, got "
                f"n_kernels={self.n_kernels}, max_dilations={self.max_dilations}"
            )
        super().__post_init__()


class HydraFeatures(nn.Module):
    """Fitted Hydra transform: series ``[B, 1, L]`` → scaled counts ``[B, F]`` (float32).

    ``F = dilations × views × 2 × groups/views × kernels`` where the views are the series
    and its first difference (one view when ``groups`` is 1).
    """

    # buffers
    weight: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor

    def __init__(self, length: int, options: HydraFeatureOptions) -> None:
        super().__init__()
        self.length = max(int(length), KERNEL_LENGTH)
        self.k = int(options.kernels)
        self.views = min(2, int(options.groups))
        self.per_view = int(options.groups) // self.views
        top = int(math.log2((self.length - 1) / (KERNEL_LENGTH - 1)))
        self.dilations = [2**e for e in range(top + 1)]
        self.dim = len(self.dilations) * self.views * 2 * self.per_view * self.k
        shape = (len(self.dilations), self.views, self.per_view * self.k, 1, KERNEL_LENGTH)
        self.register_buffer("weight", torch.zeros(shape))
        self.register_buffer("mu", torch.zeros(self.dim))
        self.register_buffer("sigma", torch.ones(self.dim))

    def counts(self, x: torch.Tensor) -> torch.Tensor:
        """Raw Hydra counts ``[B, F]`` of finite series ``[B, 1, length]``."""
        n = len(x)
        inputs = [x, torch.diff(x, dim=-1)][: self.views]
        out: list[torch.Tensor] = []
        for i, d in enumerate(self.dilations):
            pad = (KERNEL_LENGTH - 1) * d // 2
            for v, series in enumerate(inputs):
                z = F.conv1d(series, self.weight[i, v], dilation=d, padding=pad)
                z = z.view(n, self.per_view, self.k, -1)
                best, best_at = z.max(2)
                worst_at = z.min(2).indices  # (argmin over a strided dim is ~10x slower)
                soft = best.new_zeros(n, self.per_view, self.k).scatter_add_(-1, best_at, best)
                hard = best.new_zeros(n, self.per_view, self.k)
                hard.scatter_add_(-1, worst_at, torch.ones_like(best))
                out += [soft, hard]
        return torch.cat(out, 1).reshape(n, -1)

    def _batched_counts(self, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """``counts`` in chunks of ``batch`` series: one conv output is ``[batch, g·k, L]``
        floats, which at full size (thousands of series of thousands of points) would need
        gigabytes and run many times slower than in chunks."""
        return torch.cat([self.counts(x[i : i + batch]) for i in range(0, len(x), batch)])

    @torch.no_grad()
    def fit(self, x: torch.Tensor, seed: int) -> None:
        """Draw the kernels (seeded) and fit the sparse scaler on training series ``[N, 1, L]``."""
        generator = torch.Generator().manual_seed(int(seed))
        w = torch.randn(self.weight.shape, generator=generator)
        w = w - w.mean(-1, keepdim=True)
        self.weight.copy_((w / w.abs().sum(-1, keepdim=True)).to(self.weight))
        series = prepare_series(x, self.length).to(self.weight.device)
        s = self._batched_counts(series).clamp(min=0).sqrt()
        epsilon = (s == 0).float().mean(0) ** SCALER_EXPONENT + 1e-8
        self.mu.copy_(s.mean(0))
        self.sigma.copy_(s.std(0) + epsilon if len(s) > 1 else torch.ones_like(epsilon))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        series = prepare_series(x, self.length).to(self.weight.device)
        s = self._batched_counts(series).clamp(min=0).sqrt()
        return ((s - self.mu) * (s != 0) / self.sigma).to(x.device)


class MultiRocketFeatures(nn.Module):
    """Fitted MultiRocket transform (aeon): series ``[B, 1, L]`` → features ``[B, F]``.

    ``F = 8 × 84 × (n_kernels // 84)``: the series and its first difference, four pooling
    operators (PPV, MAX, MPV, LSPV in the paper's names) per kernel, dilation and bias.
    """

    REPRESENTATIONS = ("raw", "diff")

    def __init__(self, length: int, options: MultiRocketHydraFeatureOptions) -> None:
        super().__init__()
        self.length = max(int(length), KERNEL_LENGTH + 1)
        self.options = options
        per_kernel = options.n_kernels // KERNELS
        self.dim = 8 * KERNELS * per_kernel
        for rep, size in zip(self.REPRESENTATIONS, (self.length, self.length - 1), strict=True):
            count = dilation_count(size, options.n_kernels, options.max_dilations)
            self.register_buffer(f"{rep}_dilations", torch.zeros(count, dtype=torch.int32))
            self.register_buffer(f"{rep}_per_dilation", torch.zeros(count, dtype=torch.int32))
            self.register_buffer(f"{rep}_biases", torch.zeros(KERNELS * per_kernel))

    def _fitted(self, rep: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            getattr(self, f"{rep}_dilations").cpu().numpy(),
            getattr(self, f"{rep}_per_dilation").cpu().numpy(),
            getattr(self, f"{rep}_biases").cpu().numpy(),
        )

    def _rocket(self, seed: int | None = None) -> Any:  # aeon's MultiRocket (aeon is untyped)
        from aeon.transformations.collection.convolution_based import MultiRocket

        return MultiRocket(
            n_kernels=self.options.n_kernels,
            max_dilations_per_kernel=self.options.max_dilations,
            n_jobs=max(1, torch.get_num_threads()),
            random_state=seed,
        )

    def fit(self, x: torch.Tensor, seed: int) -> None:
        """Fit dilations and biases on training series ``[N, 1, L]`` (aeon, seeded)."""
        if len(x) < 2:
            raise ReprogramError("multirocket-hydra needs at least 2 training series.")
        rocket = self._rocket(seed).fit(prepare_series(x, self.length).numpy())
        for rep, fitted in zip(
            self.REPRESENTATIONS,
            (rocket.parameter, rocket.parameter1),
            strict=True,
        ):
            for suffix, value in zip(("dilations", "per_dilation", "biases"), fitted, strict=True):
                buffer = getattr(self, f"{rep}_{suffix}")
                value = np.asarray(value)
                if tuple(value.shape) != tuple(buffer.shape):
                    raise ReprogramError(
                        f"aeon's MultiRocket gave {rep} {suffix} of shape {value.shape}, "
                        f"expected {tuple(buffer.shape)}; this aeon version is not supported."
                    )
                buffer.copy_(torch.from_numpy(value).to(buffer))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rocket = self._rocket()
        rocket.parameter = self._fitted("raw")
        rocket.parameter1 = self._fitted("diff")
        rocket.random_state_ = None
        rocket._n_jobs = max(1, torch.get_num_threads())
        series = prepare_series(x, self.length).numpy()
        features = rocket._transform(series)
        return torch.from_numpy(np.asarray(features, dtype=np.float32)).to(x.device)


class MultiRocketHydraFeatures(nn.Module):
    """Hydra's scaled counts beside MultiRocket's features: ``[B, 1, L]`` → ``[B, F_h + F_m]``."""

    def __init__(self, length: int, options: MultiRocketHydraFeatureOptions) -> None:
        super().__init__()
        self.hydra = HydraFeatures(length, options)
        self.multirocket = MultiRocketFeatures(length, options)
        self.length = self.hydra.length
        self.dim = self.hydra.dim + self.multirocket.dim

    def fit(self, x: torch.Tensor, seed: int) -> None:
        self.hydra.fit(x, seed)
        self.multirocket.fit(x, seed)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.hydra(x), self.multirocket(x)], 1)


@TRANSFORMS.register("hydra", config=HydraFeatureOptions, help="Hydra's competing-kernel counts")
def build_hydra(options: HydraFeatureOptions, length: int) -> HydraFeatures:
    return HydraFeatures(length, options)


@TRANSFORMS.register(
    "multirocket-hydra",
    config=MultiRocketHydraFeatureOptions,
    help="MultiRocket's features beside Hydra's",
)
def build_multirocket_hydra(
    options: MultiRocketHydraFeatureOptions, length: int
) -> MultiRocketHydraFeatures:
    return MultiRocketHydraFeatures(length, options)
