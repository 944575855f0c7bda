"""MiniRocket (Dempster et al., KDD 2021): ~10,000 PPV features of fixed dilated convolutions.

The biases are quantiles of convolution outputs on training series, so the transform is
fitted (:meth:`MiniRocketFeatures.fit`) on the training split only. The fitted parameters are
buffers: they are saved with an artifact and reloaded from it. The computation is aeon's
numba kernel. Shared by the ``minirocket`` baseline and the ``linear`` mapping's
``side=minirocket``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..data.series import resample_valid
from ..errors import ReprogramError
from .base import TRANSFORMS, chain_post_init

KERNELS = 84  # MiniRocket's fixed kernels: 3 of 9 positions weighted 2, the rest -1
KERNEL_LENGTH = 9
PARAMETER_NAMES = (
    "n_channels_per_combination",
    "channel_indices",
    "dilations",
    "n_features_per_dilation",
    "biases",
)


@dataclass
class MiniRocketFeatureOptions:
    """Options of the MiniRocket transform (the ``minirocket`` baseline adds its head's)."""

    n_kernels: int = field(
        default=10_000, metadata={"help": "features (rounded down to a multiple of 84)"}
    )
    max_dilations: int = field(default=32, metadata={"help": "most dilations per kernel"})

    def __post_init__(self) -> None:
        if self.n_kernels < 1 or self.max_dilations < 1:
            raise ValueError("n_kernels and max_dilations must be at least 1")
        chain_post_init(super())

    @property
    def features(self) -> int:
        return KERNELS * max(1, self.n_kernels // KERNELS)


def prepare_series(x: torch.Tensor, length: int) -> torch.Tensor:
    """Series ``[B, 1, L]`` → finite contiguous float32 ``[B, 1, length]``: the valid
    (non-NaN) part of each series linearly resampled to ``length``."""
    return resample_valid(x.detach().cpu(), length).float().contiguous()


def dilation_count(length: int, n_features: int, max_dilations: int) -> int:
    """How many distinct dilations MiniRocket uses for series of ``length`` points."""
    per_kernel = n_features // KERNELS
    count = min(per_kernel, max_dilations)
    top = math.log2((length - 1) / (KERNEL_LENGTH - 1))
    return len(np.unique(np.logspace(0, top, count, base=2).astype(np.int32)))


class MiniRocketFeatures(nn.Module):
    """Fitted MiniRocket transform: series ``[B, 1, L]`` → PPV features ``[B, F]`` (float32).

    The fitted parameters are buffers (saved and reloaded with the artifact); the
    computation is aeon's numba kernel. NaN-padded series are resampled to ``length`` first.
    """

    def __init__(self, length: int, options: MiniRocketFeatureOptions) -> None:
        super().__init__()
        self.length = max(int(length), KERNEL_LENGTH)
        self.options = options
        self.dim = options.features
        combos = KERNELS * dilation_count(self.length, self.dim, options.max_dilations)
        shapes = {
            "n_channels_per_combination": combos,
            "channel_indices": combos,
            "dilations": combos // KERNELS,
            "n_features_per_dilation": combos // KERNELS,
        }
        for name, size in shapes.items():
            self.register_buffer(name, torch.zeros(size, dtype=torch.int32))
        self.register_buffer("biases", torch.zeros(self.dim, dtype=torch.float32))

    def prepare(self, x: torch.Tensor) -> np.ndarray:
        """Series ``[B, 1, L]`` → finite float32 numpy ``[B, 1, length]`` for the transform."""
        return prepare_series(x, self.length).numpy()

    def _transformer(self) -> object:
        from aeon.transformations.collection.convolution_based import MiniRocket

        rocket = MiniRocket(n_kernels=self.options.n_kernels)
        rocket.parameters = tuple(getattr(self, n).cpu().numpy() for n in PARAMETER_NAMES)
        rocket._n_jobs = max(1, torch.get_num_threads())
        return rocket

    def fit(self, x: torch.Tensor, seed: int) -> None:
        """Fit dilations and biases on training series ``[N, 1, L]`` (aeon, seeded)."""
        from aeon.transformations.collection.convolution_based import MiniRocket

        rocket = MiniRocket(
            n_kernels=self.options.n_kernels,
            max_dilations_per_kernel=self.options.max_dilations,
            random_state=seed,
        ).fit(self.prepare(x))
        for name, value in zip(PARAMETER_NAMES, rocket.parameters, strict=True):
            buffer = getattr(self, name)
            if tuple(value.shape) != tuple(buffer.shape):
                raise ReprogramError(
                    f"aeon's MiniRocket gave {name} of shape {value.shape}, expected "
                    f"{tuple(buffer.shape)}; this aeon version is not supported."
                )
            buffer.copy_(torch.from_numpy(np.asarray(value)).to(buffer))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self._transformer()._transform(self.prepare(x))  # type: ignore[attr-defined]
        return torch.from_numpy(np.asarray(features, dtype=np.float32)).to(x.device)


@TRANSFORMS.register(
    "minirocket", config=MiniRocketFeatureOptions, help="MiniRocket's PPV features (aeon)"
)
def build_minirocket(options: MiniRocketFeatureOptions, length: int) -> MiniRocketFeatures:
    return MiniRocketFeatures(length, options)
