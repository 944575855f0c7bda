"""Target data sets by name (``fashion-mnist``, ``digits``, ``npz:PATH``, ``folder:PATH``,
``ucr:NAME``; sequences: ``amp``, ``amp-tm``, ``acp``, ``b3db``, ``b3db-scaffold``,
``csv:PATH``; forecasting: ``forecast:ETTh1`` … ``forecast:PATH.csv``)."""

from __future__ import annotations

from collections.abc import Callable

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


#: Probes telling what kind of data a prefix target holds from its name, cheaply, where its
#: registry tags cannot (``npz:`` files hold images or series), keyed by the prefix; each
#: module registers its own, and a probe answers the empty set when it cannot tell.
KIND_PROBES: dict[str, Callable[[str], frozenset[str]]] = {}


def target_kinds(name: str) -> frozenset[str]:
    """What kind of data target ``name`` holds (``image``, ``series``, ``sequence``,
    ``forecast``, ``regression``): its registry tags plus what its probe finds, without
    loading it.

    Raises:
        ReprogramError: no target is registered under ``name``.
    """
    entry = TARGETS.get(name)
    probe = KIND_PROBES.get(entry.name) if entry.prefix else None
    return entry.tags | (probe(name[len(entry.name):]) if probe else frozenset())


def load_target(name: str) -> TargetData:
    """Load the target registered as ``name``; prefix names pass the rest (a path) on."""
    data = TARGETS.create(name)
    data.name = name
    return data


__all__ = [
    "KIND_PROBES",
    "TARGETS",
    "PreparedSplits",
    "SealedSplit",
    "Split",
    "TargetData",
    "load_target",
    "target_kinds",
]
