"""Feature transforms shared by mappings (side features) and baselines: MiniRocket, Hydra."""

from __future__ import annotations

from .base import TRANSFORMS, build_transform, featurize

__all__ = ["TRANSFORMS", "build_transform", "featurize"]
