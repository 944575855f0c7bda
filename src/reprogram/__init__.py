"""reprogram: reuse a frozen pre-trained model for a new task by training only a small input
program and an output label mapping (model reprogramming)."""

from __future__ import annotations

from .api import fit
from .artifact import load_artifact
from .config import FitConfig, FitResult
from .data import TARGETS, load_target
from .errors import ReprogramError
from .mappings import MAPPINGS
from .model import ReprogrammedModel
from .optim import OPTIMIZERS
from .programs import PROGRAMS
from .runtime import tune_allocator
from .sources import SOURCES, Source, build_source

__version__ = "0.1.0"

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
    "fit",
    "load_artifact",
    "load_target",
    "tune_allocator",
]
