"""Registry of optimizers behind one interface: ``step(loss_fn) -> loss``.

A builder takes ``(config, params, backward)`` where ``backward(loss)`` back-propagates (the
engine's own, so data-parallel runs reduce gradients). Zero-order optimizers (black-box
sources) will register here too and simply never call ``backward``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch

from ..errors import ReprogramError
from ..registry import Registry


class Stepper(Protocol):
    """One optimisation step from a closure that returns the mini-batch loss."""

    def step(self, loss_fn: Callable[[], torch.Tensor]) -> float: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


OPTIMIZERS: Registry[Stepper] = Registry("optimizer", _plugins=("reprogram.optim.gradient",))


def build_optimizer(
    name: str,
    options: dict[str, Any] | None,
    params: Iterable[torch.nn.Parameter],
    backward: Callable[[torch.Tensor], None],
) -> tuple[Stepper, Any]:
    """Build optimizer ``name``; returns the stepper and its resolved config."""
    config = OPTIMIZERS.build_config(name, options)
    try:
        stepper = OPTIMIZERS.get(name).builder(config, list(params), backward)
    except ValueError as exc:
        raise ReprogramError(f"bad options for optimizer {name!r}: {exc}") from None
    return stepper, config


__all__ = ["OPTIMIZERS", "Stepper", "build_optimizer"]
