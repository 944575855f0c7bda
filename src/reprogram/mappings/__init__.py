"""Registry of label mappings; a builder takes ``(config, num_source, num_target)``."""

from __future__ import annotations

from typing import Any

from ..errors import ReprogramError
from ..registry import Registry
from .base import Mapping

MAPPINGS: Registry[Mapping] = Registry(
    "mapping",
    _plugins=(
        "reprogram.mappings.random",
        "reprogram.mappings.frequency",
        "reprogram.mappings.bayesian",
        "reprogram.mappings.linear",
        "reprogram.mappings.semantic",
        "reprogram.mappings.verbalizer",
        "reprogram.mappings.horizon",
    ),
)


def build_mapping(
    name: str, options: dict[str, Any] | None, num_source: int, num_target: int
) -> tuple[Mapping, Any]:
    """Build mapping ``name``; returns the module and its resolved config.

    A mapping that reads the target inputs too (``reads_inputs``, e.g. ``linear`` with
    ``side=minirocket``) is then bound to their shape with :meth:`Mapping.bind_inputs`.
    """
    config = MAPPINGS.build_config(name, options)
    try:
        mapping = MAPPINGS.get(name).builder(config, num_source, num_target)
    except ValueError as exc:
        raise ReprogramError(f"bad options for mapping {name!r}: {exc}") from None
    return mapping, config


__all__ = ["MAPPINGS", "Mapping", "build_mapping"]
