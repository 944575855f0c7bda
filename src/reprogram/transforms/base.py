"""The registry of feature transforms and what every transform shares.

A transform is an ``nn.Module`` built for inputs of length ``L`` by
``builder(options, length)``; it offers ``fit(x, seed)`` on training inputs ``[N, 1, L]``,
``dim`` (features per input) and ``forward``: ``[B, 1, L]`` → ``[B, dim]`` float32, without
gradient. Its fitted state is buffers, so it is saved and reloaded with an artifact.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..accelerator import to_model
from ..errors import ReprogramError
from ..registry import Registry

TRANSFORMS: Registry[nn.Module] = Registry(
    "transform", _plugins=("reprogram.transforms.minirocket", "reprogram.transforms.hydra")
)


def chain_post_init(parent: Any) -> None:
    """Call ``parent.__post_init__`` (``parent`` is ``super()``), if the MRO has one: options
    dataclasses combine a transform's options with a head's by multiple inheritance."""
    nxt = getattr(parent, "__post_init__", None)
    if nxt is not None:
        nxt()


def build_transform(
    name: str, length: int, options: dict[str, Any] | None = None
) -> nn.Module:
    """The unfitted transform ``name`` for series of ``length`` points."""
    config = TRANSFORMS.build_config(name, options)
    try:
        return TRANSFORMS.get(name).builder(config, int(length))
    except ValueError as exc:
        raise ReprogramError(f"bad options for transform {name!r}: {exc}") from None


@torch.no_grad()
def featurize(
    featurizer: nn.Module,
    x: torch.Tensor,
    batch_size: int,
    dim: int,
    progress: str | None = None,
) -> torch.Tensor:
    """``featurizer`` (eval mode) on inputs ``[N, ...]`` in chunks of ``batch_size``: ``[N, dim]``.

    The chunks start at 0 exactly as :func:`reprogram.evaluate.score` takes them for images
    and series (token ids it reads longest first; no featurizer here depends on a row's
    batch for those); ``progress`` names a progress bar (none when ``None``).
    """
    featurizer.eval()
    starts = range(0, len(x), batch_size)
    bar = tqdm(starts, desc=progress, leave=False, unit="batch", disable=progress is None)
    chunks = [featurizer(to_model(featurizer, x[i : i + batch_size])).cpu() for i in bar]
    return torch.cat(chunks) if chunks else torch.empty(0, dim)
