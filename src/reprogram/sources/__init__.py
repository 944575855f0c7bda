"""Registry of source models: packaged offline ones, ``timm:NAME``, and any module from Python."""

from __future__ import annotations

import os

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
        "reprogram.sources.language",
    ),
)


#: Sources an artifact may name without the user naming them again (comma-separated).
TRUST_ENV = "REPROGRAM_TRUSTED_SOURCES"


def needs_consent(name: str) -> bool:
    """Whether source ``name`` reaches outside the process: a remote endpoint (``http://``,
    ``https://``) or a file (``onnx:PATH``). An artifact that names one is not followed
    without the user's say-so (it would send inputs, and a token, wherever it points)."""
    return str(name).strip().lower().startswith(("http://", "https://", "onnx:"))


def trusted(name: str) -> bool:
    """Whether the user allowed source ``name`` in ``$REPROGRAM_TRUSTED_SOURCES``."""
    allowed = {s.strip() for s in os.environ.get(TRUST_ENV, "").split(",") if s.strip()}
    return str(name).strip() in allowed


def build_source(name: str) -> Source:
    """Build the source registered as ``name`` (e.g. ``efficientnet-lite0``, ``timm:resnet18``)."""
    return SOURCES.create(name)


__all__ = ["SOURCES", "TRUST_ENV", "Source", "build_source", "needs_consent", "trusted"]
