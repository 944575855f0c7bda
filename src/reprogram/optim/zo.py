"""Shared machinery of the zeroth-order (query-only) optimizers ``rgf`` and ``spsa-gc``.

Hybrid by default. In a reprogrammed model the label mapping sits AFTER the black box: its
parameters get exact gradients by back-propagating the loss to the answered (log-)probabilities,
which costs no extra query. Only the parameters BEFORE the box (the program's) need
zeroth-order estimates from perturbed queries. The trainer passes those as ``before_box``;
``hybrid=False`` (or a builder called without ``before_box``) estimates every parameter from
queries instead (pure zeroth order, as BAR and BlackVIP do).

A stepper perturbs the zeroth-order parameters in place under ``torch.no_grad``, evaluates the
mini-batch loss through the closure, and restores them. Its random directions come from its
own ``torch.Generator`` (seeded from the run's seeded global RNG when built, or from
``seed``), saved in ``state_dict`` with the step counter, so fixed seeds reproduce a run,
also across ``--resume``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch


@dataclass
class ZerothOrderConfig:
    """Options every zeroth-order optimizer shares."""

    zeroth_order: ClassVar[bool] = True

    hybrid: bool = field(
        default=True,
        metadata={
            "help": "exact gradients (no extra queries) for parameters after the box (the "
            "mapping), zeroth-order estimates only for those before it (the program); false: "
            "estimate every parameter from queries"
        },
    )
    seed: int | None = field(
        default=None,
        metadata={"help": "seed of the random directions (default: drawn from the run's seed)"},
    )


class ZerothOrderStepper:
    """Splits parameters into zeroth-order ones and exact-gradient ones; flat-vector helpers.

    Args:
        config: the shared options.
        params: every trainable parameter.
        backward: the engine's ``backward(loss)`` (for the exact-gradient part).
        before_box: parameters whose values reach the black box (the program's); ``None``
            treats every parameter as before the box.
    """

    def __init__(
        self,
        config: ZerothOrderConfig,
        params: list[torch.nn.Parameter],
        backward: Callable[[torch.Tensor], None],
        before_box: list[torch.nn.Parameter] | None = None,
    ) -> None:
        if not params:
            raise ValueError("nothing to train: the program and mapping have no parameters")
        zo = params if before_box is None or not config.hybrid else before_box
        ids = {id(p) for p in zo}
        self.zo_params = [p for p in params if id(p) in ids]
        self.grad_params = [p for p in params if id(p) not in ids]
        self.backward = backward
        self.dim = sum(p.numel() for p in self.zo_params)
        seed = config.seed
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0

    # ------------------------------------------------------------------ flat parameter vector
    def flat(self) -> torch.Tensor:
        """The zeroth-order parameters as one vector ``[d]`` (a copy)."""
        return torch.cat([p.detach().reshape(-1) for p in self.zo_params]).clone()

    @torch.no_grad()
    def load_flat(self, vector: torch.Tensor) -> None:
        """Write ``vector`` ``[d]`` into the zeroth-order parameters (in place)."""
        offset = 0
        for p in self.zo_params:
            n = p.numel()
            p.copy_(vector[offset : offset + n].view_as(p))
            offset += n

    def set_grads(self, vector: torch.Tensor) -> None:
        """Give the zeroth-order parameters ``vector`` ``[d]`` as their ``.grad``."""
        offset = 0
        for p in self.zo_params:
            n = p.numel()
            p.grad = vector[offset : offset + n].view_as(p).clone()
            offset += n

    # ------------------------------------------------------------------ evaluations
    def evaluate(self, loss_fn: Callable[[], torch.Tensor], with_grad: bool) -> float:
        """The loss; with ``with_grad`` (and exact-gradient parameters) also back-propagate it.

        Gradients of the exact-gradient parameters accumulate over calls.
        """
        if with_grad and self.grad_params:
            loss = loss_fn()
            self.backward(loss)
            return float(loss.detach())
        with torch.no_grad():
            return float(loss_fn())

    def zero_grads(self) -> None:
        for p in self.zo_params + self.grad_params:
            p.grad = None

    def queries_per_example(self) -> int:
        """Inputs sent to the box per training example and step (before cache hits)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    def base_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "steps": self.steps}

    def load_base_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.steps = int(state["steps"])


_Stepper = TypeVar("_Stepper", bound=ZerothOrderStepper)


def builder(cls: type[_Stepper]) -> Callable[..., _Stepper]:
    """The registry builder of stepper class ``cls``: ``(config, params, backward, before_box)``."""

    def build(
        config: ZerothOrderConfig,
        params: list[torch.nn.Parameter],
        backward: Callable[[torch.Tensor], None],
        before_box: list[torch.nn.Parameter] | None = None,
    ) -> _Stepper:
        return cls(config, params, backward, before_box)

    build.__name__ = f"build_{cls.__name__}"
    return build


__all__ = ["ZerothOrderConfig", "ZerothOrderStepper", "builder"]
