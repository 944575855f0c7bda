"""Which device trains: ``--accelerator auto|cpu|cuda|mps``, resolved once per run.

Data stays on the CPU (splits are small, and the test split stays sealed there); each batch
moves to the model's device at the model's boundary (:func:`to_model`), and what leaves the
model for closed-form fits, counts and metrics comes back to the CPU. ``auto`` picks a GPU
when PyTorch sees one, else the CPU. Black-box sources answer over the wire or from another
runtime, so their runs stay on the CPU.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from .errors import ReprogramError

ACCELERATORS = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available(name: str) -> bool:
    """Whether this process can train on the concrete accelerator ``name`` (``cpu`` always)."""
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        return _mps_available()
    return name == "cpu"


def check_name(name: str) -> None:
    """Refuse an accelerator name that is not one of :data:`ACCELERATORS`."""
    if name not in ACCELERATORS:
        raise ReprogramError(
            f"--accelerator {name!r} is not known; choose one of {', '.join(ACCELERATORS)} "
            "(auto: a GPU when PyTorch sees one, else the CPU)."
        )


def resolve(name: str, *, blackbox: bool = False) -> str:
    """The concrete accelerator (``cpu``, ``cuda`` or ``mps``) a run with ``name`` uses.

    Args:
        name: one of :data:`ACCELERATORS`.
        blackbox: the source only answers queries (its runs stay on the CPU).

    Raises:
        ReprogramError: an unknown name, a GPU asked for that PyTorch does not see, or a GPU
            asked for with a black-box source.
    """
    check_name(name)
    if name == "auto":
        if blackbox:
            return "cpu"
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available() else "cpu"
    if name != "cpu" and blackbox:
        raise ReprogramError(
            f"--accelerator {name}: a black-box source answers queries on its own hardware, "
            "so its runs keep the program on the CPU. Drop --accelerator (or give cpu)."
        )
    if not available(name):
        if name == "mps":
            hint = "this needs Apple silicon and a torch build with MPS"
        elif torch.version.cuda is None:
            hint = f"torch {torch.__version__} is built without CUDA; install a CUDA build"
        else:
            hint = "no GPU is visible: check nvidia-smi and CUDA_VISIBLE_DEVICES"
        raise ReprogramError(
            f"--accelerator {name}: PyTorch sees no such device here ({hint}). "
            "Use --accelerator cpu, or auto to take a GPU only when there is one."
        )
    return name


def device_count(name: str) -> int:
    """How many devices of the concrete accelerator ``name`` one machine offers."""
    if name == "cuda":
        return torch.cuda.device_count()
    if name == "mps":
        return 1
    return os.cpu_count() or 1


def describe(name: str) -> str:
    """A readable name of the device a run used: the GPU's model name, or ``cpu``."""
    if name == "cuda" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return name


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer (the CPU when it has none)."""
    for tensor in module.parameters():
        return tensor.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")


def to_model(module: nn.Module, *tensors: torch.Tensor) -> Any:
    """``tensors`` moved to ``module``'s device (one tensor, or a tuple for several)."""
    device = module_device(module)
    moved = tuple(t.to(device, non_blocking=True) for t in tensors)
    return moved[0] if len(moved) == 1 else moved


__all__ = [
    "ACCELERATORS",
    "available",
    "check_name",
    "describe",
    "device_count",
    "module_device",
    "resolve",
    "to_model",
]
