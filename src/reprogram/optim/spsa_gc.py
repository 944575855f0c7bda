"""``spsa-gc``: SPSA with gradient correction, as in BlackVIP (Oh et al., CVPR 2023).

Step ``k`` (from 0), gains ``a_k = a / (k + 1 + A)^alpha`` and ``c_k = c / (k + 1)^gamma``.
The estimate is taken at the Nesterov look-ahead point ``v = w + momentum · m``:

    ĝ = mean over ``samples`` draws of  [L(v + c_k Δ) − L(v − c_k Δ)] / (2 c_k) · Δ⁻¹

with ``Δ`` a random ± perturbation per coordinate (``segmented``: magnitude uniform in
``[0.5, 1]`` as in BlackVIP's code, or ``rademacher``: ±1), then

    m ← momentum · m − a_k ĝ,    w ← w + m

(2 · ``samples`` queries per example a step). Defaults are BlackVIP's (``a = c = 0.01``,
``A = 1``, ``alpha = 0.4``, ``gamma = 0.1``, ``momentum = 0.9``) except ``samples`` (BlackVIP
averages 5; 1 here, the cheapest). In hybrid mode (the default, see :mod:`reprogram.optim.zo`)
every evaluation also back-propagates to the mapping, whose averaged exact gradient Adam
steps with learning rate ``lr``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import OPTIMIZERS
from .zo import ZerothOrderConfig, ZerothOrderStepper, builder


@dataclass
class SPSAGCConfig(ZerothOrderConfig):
    """Options of ``spsa-gc`` (BlackVIP's defaults)."""

    a: float = field(default=0.01, metadata={"help": "step gain: a_k = a / (k + 1 + A)^alpha"})
    c: float = field(default=0.01, metadata={"help": "perturbation: c_k = c / (k + 1)^gamma"})
    A: float = field(default=1.0, metadata={"help": "stability constant of a_k"})
    alpha: float = field(default=0.4, metadata={"help": "decay exponent of a_k"})
    gamma: float = field(default=0.1, metadata={"help": "decay exponent of c_k"})
    momentum: float = field(
        default=0.9, metadata={"help": "Nesterov momentum (gradient correction)"}
    )
    samples: int = field(
        default=1, metadata={"help": "perturbations averaged per step (2 queries each)"}
    )
    perturbation: str = field(default="segmented", metadata={"help": "segmented or rademacher"})
    lr: float = field(
        default=0.01, metadata={"help": "Adam learning rate of exact-gradient parameters"}
    )

    def __post_init__(self) -> None:
        if self.a <= 0 or self.c <= 0 or self.lr <= 0:
            raise ValueError("a, c and lr must be positive")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum}")
        if self.perturbation not in ("segmented", "rademacher"):
            raise ValueError(
                f"perturbation must be segmented or rademacher, got {self.perturbation!r}"
            )


class SPSAGCStepper(ZerothOrderStepper):
    """Two-sided SPSA at a Nesterov look-ahead point, with decaying gains."""

    def __init__(
        self,
        config: SPSAGCConfig,
        params: list[torch.nn.Parameter],
        backward: Callable[[torch.Tensor], None],
        before_box: list[torch.nn.Parameter] | None = None,
    ) -> None:
        super().__init__(config, params, backward, before_box)
        self.config = config
        self.velocity = torch.zeros(self.dim)
        self.optimizer = (
            torch.optim.Adam(self.grad_params, lr=config.lr) if self.grad_params else None
        )

    def queries_per_example(self) -> int:
        return 2 * self.config.samples if self.zo_params else 1

    def gains(self) -> tuple[float, float]:
        """``(a_k, c_k)`` of the coming step."""
        cfg, k = self.config, self.steps
        return cfg.a / (k + 1 + cfg.A) ** cfg.alpha, cfg.c / (k + 1) ** cfg.gamma

    def perturbation(self) -> torch.Tensor:
        """A random ± direction ``[d]`` (segmented: magnitudes in [0.5, 1])."""
        sign = torch.randint(0, 2, (self.dim,), generator=self.generator).float() * 2 - 1
        if self.config.perturbation == "rademacher":
            return sign
        return sign * (torch.rand(self.dim, generator=self.generator) + 1) / 2

    def step(self, loss_fn: Callable[[], torch.Tensor]) -> float:
        """One step; returns the mean of the evaluated losses."""
        self.zero_grads()
        if not self.zo_params:
            loss = self.evaluate(loss_fn, with_grad=True)
            self._step_exact(1)
            self.steps += 1
            return loss
        a_k, c_k = self.gains()
        w = self.flat()
        look = w + self.config.momentum * self.velocity
        g = torch.zeros_like(w)
        losses = []
        for _ in range(self.config.samples):
            delta = self.perturbation()
            self.load_flat(look + c_k * delta)
            plus = self.evaluate(loss_fn, with_grad=True)
            self.load_flat(look - c_k * delta)
            minus = self.evaluate(loss_fn, with_grad=True)
            g += (plus - minus) / (2 * c_k) / delta
            losses += [plus, minus]
        g /= self.config.samples
        self.velocity = self.config.momentum * self.velocity - a_k * g
        self.load_flat(w + self.velocity)
        self._step_exact(2 * self.config.samples)
        self.steps += 1
        return sum(losses) / len(losses)

    def _step_exact(self, evaluations: int) -> None:
        """Adam step of the exact-gradient parameters on their gradient averaged over calls."""
        if self.optimizer is None:
            return
        for p in self.grad_params:
            if p.grad is not None:
                p.grad /= evaluations
        self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "velocity": self.velocity.clone(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            **self.base_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.velocity = state["velocity"].clone()
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.load_base_state(state)


OPTIMIZERS.register(
    "spsa-gc", config=SPSAGCConfig, help="BlackVIP's SPSA with gradient correction (query-only)"
)(builder(SPSAGCStepper))
