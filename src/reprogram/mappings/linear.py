"""``linear``: a learned affine layer on the source logits."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..callbacks import Callback
from . import MAPPINGS
from .base import Mapping
from .callbacks import ProbeInitCallback, RidgeHeadCallback
from .side import build_side


@dataclass
class LinearConfig:
    """Options of the linear mapping."""

    init: str = field(
        default="zero",
        metadata={
            "help": "zero: weights start at zero; probe: start from a logistic regression on "
            "the source logits at the initial program (C chosen on validation), which is then "
            "also a selection candidate (epoch 0); semantic: each class starts reading the "
            "one source label whose name is closest to its own (AutoVP's fully connected "
            "mapping with a semantic start; the semantic mapping's choice)"
        },
    )

    encoder: str = field(
        default="minilm-l6",
        metadata={"help": "init=semantic: the sentence encoder that compares the names"},
    )

    head: str = field(
        default="sgd",
        metadata={
            "help": "sgd: the layer trains with the program by gradient; ridge: the layer is "
            "frozen while the program trains and refitted in closed form before every "
            "validation (ridge classifier on the training split's standardised source "
            "outputs, penalty by leave-one-out), the untrained program being epoch 0"
        },
    )

    side: str = field(
        default="none",
        metadata={
            "help": "none, or a time-series transform (minirocket, hydra, multirocket-hydra) "
            "whose features of the raw target series sit beside the source outputs in the "
            "layer; fitted on the training split; needs head=ridge"
        },
    )

    def __post_init__(self) -> None:
        if self.init not in ("zero", "probe", "semantic"):
            raise ValueError(f"init must be zero, probe or semantic, got {self.init!r}")
        if self.head not in ("sgd", "ridge"):
            raise ValueError(f"head must be sgd or ridge, got {self.head!r}")
        if self.head == "ridge" and self.init != "zero":
            raise ValueError(
                f"head=ridge fits its own starting layer (epoch 0); drop init={self.init}"
            )
        if self.side != "none" and self.head != "ridge":
            raise ValueError(
                f"side={self.side} adds thousands of unscaled features, which only the "
                "closed-form head fits well; add head=ridge"
            )


class LinearMapping(Mapping):
    """``W · logits + b``, ``W`` ``[K_t, K_s]``; starts at zero so every class starts equal.

    Works on any source outputs, so on a ``features:`` source's features ``[B, D]`` too.
    With ``head="ridge"`` the layer takes no gradient (the trainer's ridge-head callback
    refits it in closed form).

    With ``side`` (not ``"none"``) the layer reads ``[logits, side(x)]`` ``[B, K_s + F]``:
    ``F`` features of the raw target series ``x`` ``[B, 1, L]`` from a fixed transform
    (:mod:`reprogram.mappings.side`), bound to the target's input shape by
    :meth:`bind_inputs` and fitted on the training split by the ridge-head callback.
    """

    reads_labels = False
    predicts_values = True

    def __init__(
        self,
        num_source: int,
        num_target: int,
        init: str = "zero",
        head: str = "sgd",
        side: str = "none",
        encoder: str = "minilm-l6",
    ) -> None:
        super().__init__(num_source, num_target)
        self.init = init
        self.encoder = encoder
        self.reads_labels = init == "semantic"  # the start reads the source's label names
        self.head = head
        self.side_name = side
        self.reads_inputs = side != "none"
        self.side: nn.Module | None = None
        self.linear = self._layer(num_source)

    def _layer(self, width: int) -> nn.Linear:
        layer = nn.Linear(width, self.num_target)
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
        if self.head == "ridge":
            layer.requires_grad_(False)
        return layer

    def callbacks(self) -> list[Callback]:
        """``init=probe``: a probe warm start; ``head=ridge``: the closed-form layer's refits."""
        hooks: list[Callback] = []
        if self.init == "probe":
            hooks.append(ProbeInitCallback())
        if self.head == "ridge":
            hooks.append(RidgeHeadCallback())
        return hooks

    def bind_names(self, source_names: list[str], target_names: list[str]) -> None:
        """``init=semantic``: row ``t`` of the layer starts as a one on the source label whose
        name is closest to class ``t``'s (greedy one-to-one, as ``semantic`` chooses), zero
        elsewhere, so training starts from the semantic mapping's scores."""
        if self.init != "semantic":
            return
        from .semantic import SemanticConfig, SemanticMapping  # lazy: a text encoder

        chooser = SemanticMapping(
            self.num_source, self.num_target, SemanticConfig(encoder=self.encoder)
        )
        chooser.bind_names(source_names, target_names)
        with torch.no_grad():
            self.linear.weight.zero_()
            rows = torch.arange(self.num_target)
            self.linear.weight[rows, chooser.groups[:, 0].to(self.linear.weight.device)] = 1.0
            self.linear.bias.zero_()

    def bind_inputs(self, input_shape: tuple[int, ...]) -> None:
        """Build the side transform for target inputs of ``input_shape`` (``(1, L)``)."""
        if not self.reads_inputs:  # no side: nothing depends on the inputs' shape
            return
        self.side = build_side(self.side_name, input_shape)
        # a transform's dim is a plain int; torch types Module attributes as Tensor | Module
        self.linear = self._layer(self.num_source + int(self.side.dim))  # type: ignore[arg-type]

    def forward(self, logits: torch.Tensor, inputs: torch.Tensor | None = None) -> torch.Tensor:
        if self.reads_inputs:
            if self.side is None or inputs is None:
                raise RuntimeError(
                    f"side={self.side_name} needs bind_inputs() and the target inputs"
                )
            with torch.no_grad():  # a fixed transform of the raw series
                extra = self.side(inputs).to(device=logits.device, dtype=logits.dtype)
            logits = torch.cat([logits, extra], dim=1)
        return self.linear(logits)

    def input_names(self, label_names: list[str]) -> list[str]:
        """A name for each of the layer's ``in_features`` inputs: the source's labels, then
        ``side[i]`` for the side transform's features (``K_s + F`` names)."""
        extra = self.linear.in_features - len(label_names)
        return list(label_names) + [f"{self.side_name}[{i}]" for i in range(extra)]

    def table(self, label_names: list[str], top: int = 3) -> list[dict[str, object]]:
        label_names = self.input_names(label_names)
        weights = self.linear.weight.detach()
        rows: list[dict[str, object]] = []
        for row in weights:
            idx = torch.topk(row, k=min(top, row.numel())).indices
            rows.append(
                {
                    "source_indices": idx.tolist(),
                    "source_labels": [label_names[int(i)] for i in idx],
                    "weights": [round(float(row[i]), 4) for i in idx],
                }
            )
        return rows


@MAPPINGS.register("linear", config=LinearConfig, help="learned linear layer on source logits")
def build_linear(config: LinearConfig, num_source: int, num_target: int) -> LinearMapping:
    return LinearMapping(
        num_source,
        num_target,
        init=config.init,
        head=config.head,
        side=config.side,
        encoder=config.encoder,
    )
