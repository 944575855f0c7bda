"""Registry of source models: packaged offline ones, ``timm:NAME``, and any module from Python."""

from __future__ import annotations

from ..registry import Registry
from .base import Source

SOURCES: Registry[Source] = Registry(
    "source",
    _plugins=(
        "reprogram.sources.efficientnet",
        "reprogram.sources.timm_source",
        "reprogram.sources.module",
        "reprogram.sources.blackbox",
        "reprogram.sources.whisper",
        "reprogram.sources.hf_whisper",
        "reprogram.sources.features",
    ),
)


def build_source(name: str) -> Source:
    """Build the source registered as ``name`` (e.g. ``efficientnet-lite0``, ``timm:resnet18``)."""
    return SOURCES.create(name)


__all__ = ["SOURCES", "Source", "build_source"]
