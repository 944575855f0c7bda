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
        "reprogram.programs.smm",
        "reprogram.programs.resize",
        "reprogram.programs.coarse",
        "reprogram.programs.series_image",
        "reprogram.programs.waveform",
        "reprogram.programs.sonify",
        "reprogram.programs.text",
        "reprogram.programs.soft_prompt",
        "reprogram.programs.dictionary",
        "reprogram.programs.patch_reprogram",
    ),
)


#: The program name that means "choose from the target's and the source's input shapes".
AUTO = "auto"


def resolve_program(name: str, input_shape: tuple[int, ...], source_size: tuple[int, ...]) -> str:
    """``name`` itself, or for :data:`AUTO` the program that fits the two input shapes.

    Images ``[C, H, W]`` on an image source get ``resize-pad`` (ILM-VP's program); series
    ``[1, L]`` on an image source get ``series-image``; series on an audio source (input
    ``[T]``) get ``waveform`` (Voice2Series); sequences ``[L]`` on a language source (input
    ``[T, D]``) get ``dictionary`` (R2DL); series on a language source get ``patch-reprogram``
    (Time-LLM). Anything else raises a :class:`ReprogramError`
    asking for an explicit ``--program``.
    """
    if name != AUTO:
        return name
    image_source, audio_source = len(source_size) == 3, len(source_size) == 1
    series = len(input_shape) == 2 and input_shape[0] == 1
    if len(input_shape) == 1 and len(source_size) == 2:
        return "dictionary"  # sequences of symbols to a language source (R2DL)
    if series and len(source_size) == 2:
        return "patch-reprogram"  # forecasting windows to a language source (Time-LLM)
    if len(input_shape) == 3 and image_source:
        return "resize-pad"
    if series and image_source:
        return "series-image"
    if series and audio_source:
        return "waveform"
    if len(input_shape) == 3 and audio_source:
        raise ReprogramError(
            f"the target's inputs are images {list(input_shape)} and the source takes audio "
            f"{list(source_size)}; no program plays images to an audio source. Use an image "
            f"source such as --source efficientnet-lite0."
        )
    raise ReprogramError(
        f"no program is chosen by default for target inputs of shape {list(input_shape)} on a "
        f"source taking {list(source_size)}; name one with --program (reprogram list programs)."
    )


def build_program(
    name: str,
    options: dict[str, Any] | None,
    input_shape: tuple[int, ...],
    source_size: tuple[int, ...],
) -> tuple[nn.Module, Any]:
    """Build program ``name`` with ``options``; returns the module and its resolved config.

    ``name`` may be :data:`AUTO`; :func:`resolve_program` tells which program that built.
    """
    name = resolve_program(name, input_shape, source_size)
    config = PROGRAMS.build_config(name, options)
    try:
        program = PROGRAMS.get(name).builder(config, tuple(input_shape), tuple(source_size))
    except ValueError as exc:
        raise ReprogramError(f"bad options for program {name!r}: {exc}") from None
    return program, config


__all__ = ["AUTO", "PROGRAMS", "build_program", "resolve_program"]
