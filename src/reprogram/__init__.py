"""reprogram: reuse a frozen pre-trained model for a new task by training only a small input
program and an output label mapping (model reprogramming)."""

from __future__ import annotations

import logging

from .api import fit
from .artifact import load_artifact
from .config import FitConfig, FitResult
from .data import TARGETS, load_target
from .errors import ReprogramError
from .mappings import MAPPINGS
from .model import ReprogrammedModel
from .optim import OPTIMIZERS
from .predict import encode_sequences
from .programs import PROGRAMS
from .runtime import tune_allocator
from .sources import SOURCES, Source, build_source


def _version() -> str:
    """The installed distribution's version (pyproject.toml is the one place it is written)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reprogram")
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"


__version__ = _version()

# The library's messages go to the "reprogram" logger (each module logs to a child of it); the
# application decides where they go. The `reprogram` command shows INFO and up on stderr.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "MAPPINGS",
    "OPTIMIZERS",
    "PROGRAMS",
    "SOURCES",
    "TARGETS",
    "FitConfig",
    "FitResult",
    "ReprogramError",
    "ReprogrammedModel",
    "Source",
    "build_source",
    "encode_sequences",
    "fit",
    "load_artifact",
    "load_target",
    "tune_allocator",
]
