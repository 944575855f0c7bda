"""Atomic training checkpoints: written to a temporary file, then renamed into place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .atomic import write_atomic
from .errors import ArtifactError

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically to ``path``."""
    write_atomic(Path(path), lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only``: no unpickling)."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArtifactError(f"no checkpoint at {path}: there is nothing to resume.") from None
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the file is unusable
        raise ArtifactError(
            f"the checkpoint {path} cannot be read ({type(exc).__name__}); it is corrupt or "
            f"truncated. Delete it to start the run again."
        ) from None
