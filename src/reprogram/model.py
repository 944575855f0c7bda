"""``ReprogrammedModel``: program → frozen source → mapping."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from .accelerator import to_model
from .mappings.base import Mapping
from .sources.base import Source


class ReprogrammedModel(nn.Module):
    """A frozen source model between a trainable program and a label mapping.

    Args:
        source: the frozen classifier (its parameters never get gradients; eval mode always).
        program: ``[B, C_t, H_t, W_t]`` target inputs → ``[B, C_s, S, S]`` source pixels.
        mapping: ``[B, K_s]`` source logits → ``[B, K_t]`` target scores.
    """

    def __init__(self, source: Source, program: nn.Module, mapping: Mapping) -> None:
        super().__init__()
        self.source = source
        self.program = program
        self.mapping = mapping
        for p in self.source.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> ReprogrammedModel:
        """Train the program and mapping; the source stays in eval mode regardless."""
        super().train(mode)
        self.source.train(False)
        return self

    def source_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Source logits ``[B, K_s]`` of the reprogrammed inputs ``x`` ``[B, C_t, H_t, W_t]``."""
        return self.source(self.program(x))

    def scores(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Target scores ``[B, K_t]`` from source ``logits`` of the target inputs ``x``.

        The mapping reads ``x`` too when it has side features (``reads_inputs``).
        """
        return self.mapping(logits, x) if self.mapping.reads_inputs else self.mapping(logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Target scores ``[B, K_t]`` for target inputs ``x`` ``[B, C_t, H_t, W_t]``."""
        return self.scores(self.source_logits(x), x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """Predicted target classes ``[N]`` for inputs ``[N, C_t, H_t, W_t]``."""
        was_training = self.training
        self.eval()
        out = [
            self(to_model(self, x[i : i + batch_size])).argmax(-1).cpu()
            for i in range(0, len(x), batch_size)
        ]
        self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)

    def adapter_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        """What training changes: program and mapping parameters and persistent buffers."""
        state = self.state_dict()
        return OrderedDict(
            (k, v) for k, v in state.items() if k.startswith(("program.", "mapping."))
        )

    def trainable_parameters(self) -> int:
        """Number of adapted scalars: program + mapping, trained by gradient or fitted in
        closed form (a ``head=ridge`` layer)."""
        adapted = (self.program.parameters(), self.mapping.parameters())
        return sum(p.numel() for group in adapted for p in group)

    def source_parameters(self) -> int:
        """Number of scalars in the frozen source model."""
        return self.source.num_parameters

    def print_trainable_parameters(self) -> None:
        """Print trained vs frozen parameter counts, as PEFT does."""
        trained, frozen = self.trainable_parameters(), self.source_parameters()
        total = trained + frozen
        print(
            f"trainable params: {trained:,} || all params: {total:,} || "
            f"trainable%: {100 * trained / max(total, 1):.4f}"
        )

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, source: Source | None = None
    ) -> ReprogrammedModel:
        """Rebuild a trained model from a ``fit`` artifact (refuses a different source model).

        ``source`` is needed only for a source that is not buildable by name (a user module).
        """
        from .artifact import load_artifact

        return load_artifact(directory, source=source)[0]
