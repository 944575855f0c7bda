"""Target data sets by name (``fashion-mnist``, ``digits``, ``npz:PATH``, ``folder:PATH``,
``ucr:NAME``; sequences: ``amp``, ``amp-tm``, ``acp``, ``b3db``, ``b3db-scaffold``,
``csv:PATH``; forecasting: ``forecast:ETTh1`` … ``forecast:PATH.csv``)."""

from __future__ import annotations

from ..registry import Registry
from .base import PreparedSplits, SealedSplit, Split, TargetData

TARGETS: Registry[TargetData] = Registry(
    "target",
    _plugins=(
        "reprogram.data.fashion_mnist",
        "reprogram.data.digits",
        "reprogram.data.npz",
        "reprogram.data.folder",
        "reprogram.data.ucr",
        "reprogram.data.peptides",
        "reprogram.data.molecules",
        "reprogram.data.sequence_csv",
        "reprogram.data.forecast",
        "reprogram.data.torchvision_sets",
    ),
)


def load_target(name: str) -> TargetData:
    """Load the target registered as ``name``; prefix names pass the rest (a path) on."""
    data = TARGETS.create(name)
    data.name = name
    return data


__all__ = ["TARGETS", "PreparedSplits", "SealedSplit", "Split", "TargetData", "load_target"]
