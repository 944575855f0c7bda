"""Shared test helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reprogram import FitConfig
from reprogram.callbacks import Callback


class Crash(Exception):
    """Raised by :class:`CrashAt` to stand for a killed process."""


class CrashAt(Callback):
    """Simulates a killed process at the start of an epoch."""

    name = "crash"

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_start(self, trainer, epoch) -> None:  # type: ignore[no-untyped-def]
        if epoch == self.epoch:
            raise Crash


def tiny_config(tmp_path: Path, name: str = "run", **kw: object) -> FitConfig:
    """A fast fit on ``tiny-random-cnn`` and ``digits`` into ``tmp_path/name``; ``kw`` wins."""
    base: dict[str, object] = dict(
        source="tiny-random-cnn",
        target="digits",
        program="resize-pad",
        mapping="linear",
        epochs=3,
        shots=20,
        seed=3,
        out=str(tmp_path / name),
        progress=False,
        plots=False,
    )
    base.update(kw)
    return FitConfig(**base)  # type: ignore[arg-type]


async def read_predict(scope: dict[str, Any], receive: Any) -> tuple[bytes, int]:
    """For ASGI test middleware: a ``/predict`` request's whole body and its number of inputs
    (JSON, or binary safetensors by its content type)."""
    from safetensors.numpy import load

    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if (b"content-type", b"application/octet-stream") in scope["headers"]:
        return body, len(load(body)["pixels"])
    return body, int(json.loads(body)["shape"][0])
