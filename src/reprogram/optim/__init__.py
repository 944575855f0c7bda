"""Registry of optimizers behind one interface: ``step(loss_fn) -> loss``.

A builder takes ``(config, params, backward)`` where ``backward(loss)`` back-propagates (the
engine's own, so data-parallel runs reduce gradients). Zero-order optimizers (black-box
sources: ``rgf``, ``spsa-gc``) also take ``before_box`` (see :func:`build_optimizer`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch

from ..errors import ReprogramError
from ..registry import Registry


class Stepper(Protocol):
    """One optimisation step from a closure that returns the mini-batch loss.

    A stepper may also define ``begin_epoch(epoch)`` (1-based), called before each epoch
    (``gradient`` sets that epoch's learning rate there); it is optional."""

    def step(self, loss_fn: Callable[[], torch.Tensor]) -> float: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class NothingToTrain:
    """The stepper of a zero-shot run (``--epochs 0`` on a model with no parameters): the
    model as built is scored; no step is ever taken."""

    def step(self, loss_fn: Callable[[], torch.Tensor]) -> float:
        raise ReprogramError("this model has no trainable parameters: nothing to step")

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


OPTIMIZERS: Registry[Stepper] = Registry(
    "optimizer",
    _plugins=("reprogram.optim.gradient", "reprogram.optim.rgf", "reprogram.optim.spsa_gc"),
)


def is_zeroth_order(name: str) -> bool:
    """Whether optimizer ``name`` trains from queries alone (``rgf``, ``spsa-gc``)."""
    return bool(getattr(OPTIMIZERS.get(name).config, "zeroth_order", False))


def build_optimizer(
    name: str,
    options: dict[str, Any] | None,
    params: Iterable[torch.nn.Parameter],
    backward: Callable[[torch.Tensor], None],
    before_box: Iterable[torch.nn.Parameter] | None = None,
) -> tuple[Stepper, Any]:
    """Build optimizer ``name``; returns the stepper and its resolved config.

    ``before_box``: the parameters whose values reach the (black-box) source, i.e. the
    program's. Zeroth-order optimizers estimate only those from queries and give the rest (the
    mapping's) exact gradients; the ``gradient`` optimizer ignores it.
    """
    config = OPTIMIZERS.build_config(name, options)
    extra = {}
    if before_box is not None and is_zeroth_order(name):
        extra["before_box"] = list(before_box)
    try:
        stepper = OPTIMIZERS.get(name).builder(config, list(params), backward, **extra)
    except ValueError as exc:
        raise ReprogramError(f"bad options for optimizer {name!r}: {exc}") from None
    return stepper, config


__all__ = ["OPTIMIZERS", "NothingToTrain", "Stepper", "build_optimizer", "is_zeroth_order"]
