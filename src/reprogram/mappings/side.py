"""Side features: a fixed transform of the raw target input beside the source's outputs.

The ``linear`` mapping's ``side=NAME`` puts the features of a registered feature transform
(:data:`reprogram.transforms.TRANSFORMS`: ``minirocket``, ``hydra``, ``multirocket-hydra``)
computed on the *target* series next to the source outputs of the reprogrammed series, and
fits one ridge head on both. The transform is fitted on the training split only (its biases
or scaler), with its default options and the run's seed; its fitted tensors are buffers of
the mapping, so they are saved in the artifact and reloaded with it.

Why: the two views make different errors. Measured with frozen features
(``benchmarks/results/frozen_features_combined``), MiniRocket's features beside Whisper's in
one ridge beat either alone on the 20 UCR sets of the Voice2Series benchmark.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ReprogramError
from ..transforms import TRANSFORMS, build_transform, featurize

NONE = "none"


def side_names() -> list[str]:
    """Registered transforms usable as side features (of univariate series)."""
    return TRANSFORMS.names()


def build_side(name: str, input_shape: tuple[int, ...]) -> nn.Module:
    """The unfitted transform ``name`` for target inputs of ``input_shape`` ``(1, L)``.

    The module offers ``fit(x, seed)`` on training series ``[N, 1, L]``, ``dim`` (features
    per series) and ``forward``: ``[B, 1, L]`` → ``[B, dim]`` float32, without gradient.
    """
    if name not in TRANSFORMS.names():
        raise ReprogramError(
            f"side={name!r} is not a series transform; choose one of "
            f"{', '.join(side_names())} (or side={NONE})."
        )
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 2 or shape[0] != 1:
        raise ReprogramError(
            f"side={name} transforms univariate time series [1, L]; this target's inputs have "
            f"shape {shape}. Drop the side option for this target."
        )
    return build_transform(name, shape[1])


def side_features(side: nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """``side`` applied to ``x`` ``[N, 1, L]`` in chunks of ``batch``: ``[N, dim]`` float32."""
    # a transform's dim is a plain int; torch types Module attributes as Tensor | Module
    return featurize(side, x, batch, int(side.dim))  # type: ignore[arg-type]
