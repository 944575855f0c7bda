"""What a benchmark ran on: one record shared by every suite's ``results.json``.

Besides versions and thread counts it names the CPU and the instruction set torch's kernels
dispatch to (``cpu_capability``: ``AVX2``, ``AVX512``, ...). Two machines with different
capabilities round sums differently, and over a hundred epochs of SGD those last-bit
differences can move a cell by a few test series; the same code and seed on the same kind of
machine reproduce exactly. Comparing runs made on different capabilities is then a
seed-to-seed comparison, not a rerun.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's marketing name (Linux ``/proc/cpuinfo``), else what ``platform`` reports."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_capability() -> str:
    """The vector instruction set torch's CPU kernels use here (e.g. ``AVX512``)."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # older torch builds lack the query
        return "unknown"


def machine() -> dict[str, Any]:
    """Platform, CPU (name, capability, count), torch and Python versions, torch's threads."""
    import torch

    from reprogram.runtime import allocator_tuned

    return {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_capability": cpu_capability(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "allocator_tuned": allocator_tuned(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def describe(mach: dict[str, Any]) -> str:
    """One line for a report, e.g. ``x86_64 (AMD EPYC, AVX512), 2 CPUs, torch 2.14.1``.

    Older results lack the CPU fields; they are left out rather than guessed.
    """
    cpu = ", ".join(str(mach[k]) for k in ("cpu_model", "cpu_capability") if mach.get(k))
    head = f"{mach.get('processor', '?')} ({cpu})" if cpu else str(mach.get("processor", "?"))
    gpu = f", GPU {mach['gpu']}" if mach.get("gpu") else ""
    return f"{head}, {mach.get('cpu_count', '?')} CPUs{gpu}, torch {mach.get('torch', '?')}"


__all__ = ["cpu_capability", "cpu_model", "describe", "machine"]
