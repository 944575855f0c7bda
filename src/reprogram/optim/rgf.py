"""``rgf``: random gradient-free estimates, as in BAR (Tsai et al., ICML 2020).

    ĝ = (d / q) · Σ_j u_j · [L(w + β u_j) − L(w)] / β,   u_j uniform on the unit sphere in R^d

for the ``d`` parameters before the black box; ``q + 1`` loss evaluations a step (each one
query per example of the mini-batch). Adam (default) or SGD then steps on ĝ. In hybrid mode
(the default, see :mod:`reprogram.optim.zo`) the unperturbed evaluation ``L(w)`` also
back-propagates to the mapping's parameters, which step on their exact gradient in the same
optimizer (learning rate ``mapping_lr``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import OPTIMIZERS
from .zo import ZerothOrderConfig, ZerothOrderStepper, builder


@dataclass
class RGFConfig(ZerothOrderConfig):
    """Options of ``rgf``."""

    q: int = field(default=5, metadata={"help": "random directions per step (q + 1 queries)"})
    beta: float = field(default=0.01, metadata={"help": "smoothing: size of each probe step"})
    lr: float = field(default=0.01, metadata={"help": "learning rate on the estimate"})
    mapping_lr: float | None = field(
        default=None, metadata={"help": "learning rate of exact-gradient parameters (default lr)"}
    )
    algorithm: str = field(default="adam", metadata={"help": "adam or sgd"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})

    def __post_init__(self) -> None:
        if self.q < 1:
            raise ValueError(f"q must be at least 1, got {self.q}")
        if self.beta <= 0:
            raise ValueError(f"beta must be positive, got {self.beta}")
        if self.lr <= 0 or (self.mapping_lr is not None and self.mapping_lr <= 0):
            raise ValueError("learning rates must be positive")
        if self.algorithm not in ("adam", "sgd"):
            raise ValueError(f"algorithm must be adam or sgd, got {self.algorithm!r}")


class RGFStepper(ZerothOrderStepper):
    """BAR's random gradient-free estimate, stepped by Adam or SGD."""

    def __init__(
        self,
        config: RGFConfig,
        params: list[torch.nn.Parameter],
        backward: Callable[[torch.Tensor], None],
        before_box: list[torch.nn.Parameter] | None = None,
    ) -> None:
        super().__init__(config, params, backward, before_box)
        self.config = config
        groups = []
        if self.zo_params:
            groups.append({"params": self.zo_params, "lr": config.lr})
        if self.grad_params:
            groups.append({"params": self.grad_params, "lr": config.mapping_lr or config.lr})
        if config.algorithm == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(groups)
        else:
            self.optimizer = torch.optim.SGD(groups, momentum=config.momentum)

    def queries_per_example(self) -> int:
        return 1 + (self.config.q if self.zo_params else 0)

    @torch.no_grad()
    def estimate(self, loss_fn: Callable[[], torch.Tensor], base: float) -> torch.Tensor:
        """ĝ ``[d]`` at the current parameters, given ``base`` = L(w); parameters restored."""
        q, beta = self.config.q, self.config.beta
        w = self.flat()
        g = torch.zeros_like(w)
        for _ in range(q):
            u = torch.randn(self.dim, generator=self.generator, dtype=w.dtype)
            u /= u.norm().clamp_min(1e-12)
            self.load_flat(w + beta * u)
            g += (float(loss_fn()) - base) / beta * u
        self.load_flat(w)
        return g * (self.dim / q)

    def step(self, loss_fn: Callable[[], torch.Tensor]) -> float:
        """One step: ``L(w)`` (with exact gradients for the mapping), q probes, update."""
        self.zero_grads()
        base = self.evaluate(loss_fn, with_grad=True)
        if self.zo_params:
            self.set_grads(self.estimate(loss_fn, base))
        self.optimizer.step()
        self.steps += 1
        return base

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), **self.base_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.load_base_state(state)


OPTIMIZERS.register(
    "rgf", config=RGFConfig, help="BAR's random gradient-free estimate (query-only, q+1 a step)"
)(builder(RGFStepper))
