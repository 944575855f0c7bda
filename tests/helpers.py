"""Shared test helpers."""

from __future__ import annotations

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
