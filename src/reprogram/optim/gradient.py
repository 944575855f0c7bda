"""``gradient``: back-propagation through the frozen source (white box), Adam or SGD."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import OPTIMIZERS


@dataclass
class GradientConfig:
    lr: float = field(default=0.01, metadata={"help": "learning rate"})
    algorithm: str = field(default="adam", metadata={"help": "adam or sgd"})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 penalty"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    decay: float = field(
        default=1.0,
        metadata={
            "help": "multiply the learning rate by this each epoch (0.5 halves it, as DLinear "
            "and PatchTST train; 1: constant)"
        },
    )

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"decay must lie in (0, 1], got {self.decay}")
        if self.algorithm not in ("adam", "sgd"):
            raise ValueError(f"algorithm must be adam or sgd, got {self.algorithm!r}")


class GradientStepper:
    """Wraps a torch optimizer: zero grads, loss, backward, step."""

    def __init__(
        self,
        config: GradientConfig,
        params: list[torch.nn.Parameter],
        backward: Callable[[torch.Tensor], None],
    ) -> None:
        if not params:
            raise ValueError("nothing to train: the program and mapping have no parameters")
        if config.algorithm == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                params, lr=config.lr, weight_decay=config.weight_decay
            )
        else:
            self.optimizer = torch.optim.SGD(
                params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
            )
        self.backward = backward
        self.lr, self.decay = config.lr, config.decay

    def begin_epoch(self, epoch: int) -> None:
        """Set epoch ``epoch``'s (1-based) learning rate: ``lr · decay^(epoch-1)`` (a function of
        the epoch alone, so a resumed run continues the same schedule)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * self.decay ** (epoch - 1)

    def step(self, loss_fn: Callable[[], torch.Tensor]) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        self.backward(loss)
        self.optimizer.step()
        return float(loss.detach())

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)


@OPTIMIZERS.register("gradient", config=GradientConfig, help="back-propagation (white box)")
def build_gradient(
    config: GradientConfig,
    params: list[torch.nn.Parameter],
    backward: Callable[[torch.Tensor], None],
) -> GradientStepper:
    return GradientStepper(config, params, backward)
