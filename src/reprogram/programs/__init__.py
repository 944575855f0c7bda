"""Registry of programs (trainable input transformations), one module per family.

A builder takes ``(config, input_shape, source_size)`` and returns an ``nn.Module`` mapping
target inputs to source inputs.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ReprogramError
from ..registry import Registry

PROGRAMS: Registry[nn.Module] = Registry(
    "program",
    _plugins=(
        "reprogram.programs.border",
        "reprogram.programs.resize_pad",
        "reprogram.programs.full",
        "reprogram.programs.resize",
        "reprogram.programs.coarse",
        "reprogram.programs.series_image",
        "reprogram.programs.waveform",
        "reprogram.programs.sonify",
    ),
)


def build_program(
    name: str,
    options: dict[str, Any] | None,
    input_shape: tuple[int, ...],
    source_size: tuple[int, ...],
) -> tuple[nn.Module, Any]:
    """Build program ``name`` with ``options``; returns the module and its resolved config."""
    config = PROGRAMS.build_config(name, options)
    try:
        program = PROGRAMS.get(name).builder(config, tuple(input_shape), tuple(source_size))
    except ValueError as exc:
        raise ReprogramError(f"bad options for program {name!r}: {exc}") from None
    return program, config


__all__ = ["PROGRAMS", "build_program"]
