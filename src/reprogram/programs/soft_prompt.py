"""``soft-prompt`` (WARP, Hambardzumyan et al. 2021): trained vectors around the spelled text.

``P`` vectors of the source's embedding width are placed before the sequence (``position=
prefix``) or split before and after it (``position=around``); the sequence itself is spelled
as the ``text`` program spells it. The vectors start as the embeddings of ``P`` ordinary
source tokens drawn at random (seeded by the run): a zero start gives NaN gradients in
SmolLM2, and real embeddings sit where the model expects its inputs. The trained tensor
holds the vectors in units of the embeddings' root-mean-square value, so that an Adam step
at the usual learning rate changes them by about 1% of their size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..sources.language import LanguageSource
from . import PROGRAMS
from .tokens import TokenConfig, TokenProgram


@dataclass
class SoftPromptConfig(TokenConfig):
    length: int = field(default=8, metadata={"help": "number of trained prompt vectors P"})
    position: str = field(
        default="prefix", metadata={"help": "prefix (all before) or around (half after)"}
    )
    seed: int = field(
        default=0, metadata={"help": "draws the starting tokens (default: the run's seed)"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.length, bool) or not 1 <= self.length <= 512:
            raise ValueError(f"length must be 1 … 512 prompt vectors, got {self.length!r}")
        if self.position not in ("prefix", "around"):
            raise ValueError(f"position must be prefix or around, got {self.position!r}")


class SoftPromptProgram(TokenProgram):
    """``prompt`` ``[P, D]`` trained; the symbols spelled as text."""

    def __init__(
        self, config: SoftPromptConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
    ) -> None:
        super().__init__(config, input_shape, source_size)
        self.count = int(config.length)
        self.split = self.count // 2 if config.position == "around" else self.count
        self.seed = int(config.seed)
        self.vectors = nn.Parameter(torch.zeros(self.count, self.width))
        self.unit = 1.0  # the embeddings' root-mean-square value, read from the source

    def extra_positions(self) -> int:
        return self.count

    def on_bind(self, source: LanguageSource) -> None:
        ordinary = torch.tensor(source.ordinary_tokens())
        generator = torch.Generator().manual_seed(self.seed)
        pick = ordinary[torch.randperm(len(ordinary), generator=generator)[: self.count]]
        self.unit = float(self.table.pow(2).mean().sqrt())
        with torch.no_grad():
            self.vectors.copy_(self.table[pick] / self.unit)

    def symbol_table(self) -> torch.Tensor:
        return self.spelled_embeddings()

    def prompt(self) -> tuple[torch.Tensor, torch.Tensor]:
        vectors = self.vectors * self.unit
        return vectors[: self.split], vectors[self.split :]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "prompt_vectors": self.count}

    @torch.no_grad()
    def explain(self, top: int = 5) -> list[tuple[str, list[tuple[str, float]]]]:
        """Each prompt vector's nearest source tokens (cosine), then the spelled symbols."""
        vectors = self.vectors * self.unit
        prompt = [
            (f"prompt {i + 1}", near)
            for i, near in enumerate(self.nearest_tokens(vectors, top))
        ]
        return prompt + super().explain(top)


@PROGRAMS.register(
    "soft-prompt",
    config=SoftPromptConfig,
    help="WARP: P trained vectors before/around the spelled sequence",
)
def build_soft_prompt(
    config: SoftPromptConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> SoftPromptProgram:
    return SoftPromptProgram(config, input_shape, source_size)
