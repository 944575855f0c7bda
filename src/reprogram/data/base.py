"""Target data containers: in-memory splits, and a sealed test split.

Images are float32 tensors ``[N, C, H, W]`` with values in ``[0, 1]`` (``C`` is 1 or 3);
series float32 ``[N, 1, L]``; sequences int64 token ids ``[N, L]`` over the target's
``vocabulary`` (id ``i + 1`` is ``vocabulary[i]``, ``0`` pads the end). Labels are int64
tensors ``[N]`` with classes ``0 … K-1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import SealedSplitError


@dataclass
class Split:
    """One split: inputs ``x`` ``[N, C, H, W]`` (images) and labels ``y`` ``[N]`` (int64).

    ``epoch_share``: the share of the split one training epoch reads, a fresh random draw each
    epoch (1.0: all of it; a forecasting target's ``#sample=S`` sets ``1/S``)."""

    x: torch.Tensor
    y: torch.Tensor
    epoch_share: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.epoch_share <= 1.0:
            raise ValueError(f"epoch_share must lie in (0, 1], got {self.epoch_share!r}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: torch.Tensor) -> Split:
        """The examples at ``index`` (a 1-D index tensor), with the same epoch share."""
        return Split(self.x[index], self.y[index], self.epoch_share)

    def digest(self) -> str:
        """A short SHA-256 of the inputs and labels (their dtype, shape and bytes): ``eval``
        compares it with the one recorded at fit to tell a changed data file."""
        import hashlib

        h = hashlib.sha256()
        for t in (self.x, self.y):
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
        return h.hexdigest()[:16]


class SealedSplit:
    """The test split, closed until model selection is over.

    Trainers receive the test split sealed; reading it with :meth:`open` before
    :meth:`unseal` raises :class:`SealedSplitError`. This is how the library proves that
    nothing (epoch choice, early stopping, mapping choice) looks at test data.
    """

    def __init__(self, split: Split) -> None:
        self._split = split
        self._sealed = True

    @property
    def sealed(self) -> bool:
        return self._sealed

    def __len__(self) -> int:
        return len(self._split)

    def unseal(self) -> None:
        """Open the split; call only once selection on validation data is finished."""
        self._sealed = False

    def open(self) -> Split:
        """The split itself; raises while sealed."""
        if self._sealed:
            raise SealedSplitError(
                "the test split was read before model selection finished; selection must use "
                "the validation split only (this is a bug in the caller, please report it)."
            )
        return self._split


@dataclass
class TargetData:
    """A target task as loaded: official train and test splits, optional given validation.

    ``modality`` is ``"image"``, ``"series"`` or ``"sequence"`` (token ids ``[N, L]``, whose
    symbols ``vocabulary`` lists; ``None`` for the other modalities). ``task`` is
    ``"classification"`` (labels int64 ``[N]``) or ``"regression"`` (float32 values ``[N]``;
    ``class_names`` then holds the one value's name, e.g. ``["logS"]``; a forecasting target
    has one output per future step, float32 targets ``[N, H]``). ``forecast`` holds a
    forecasting target's facts (columns, training mean and std, lookback, horizon, season;
    :mod:`reprogram.data.forecast`), ``None`` for other targets. ``portable_name`` is set by
    loaders that read a user's path (``npz:``, ``folder:``, ``csv:``, ``ucr:PATH``,
    ``forecast:PATH.csv``): the name with that path made absolute, which loads the same files
    from any working directory (what a run's ``config.json`` records); ``None`` elsewhere.
    """

    name: str
    train: Split
    test: Split
    class_names: list[str]
    modality: str = "image"
    val: Split | None = None
    info: dict[str, str] = field(default_factory=dict)
    vocabulary: list[str] | None = None
    task: str = "classification"
    forecast: dict[str, Any] | None = None
    portable_name: str | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. ``(1, 28, 28)``."""
        return tuple(self.train.x.shape[1:])


def portable_name(prefix: str, rest: str) -> str:
    """``PREFIX:REST`` with REST's path (the part before any ``#options``) made absolute, so
    the name loads the same files from any working directory: ``("npz", "d/x.npz")`` gives
    ``npz:/home/me/d/x.npz``; the options are kept as written."""
    path, hash_, options = rest.partition("#")
    return f"{prefix}:{Path(path.strip()).expanduser().resolve()}{hash_}{options}"


@dataclass
class PreparedSplits:
    """What a trainer receives: train and validation open, test sealed."""

    train: Split
    val: Split
    test: SealedSplit
    class_names: list[str]
    input_shape: tuple[int, ...]
    modality: str = "image"
    vocabulary: list[str] | None = None
    task: str = "classification"
    forecast: dict[str, Any] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
