"""``soft-prompt`` (WARP, Hambardzumyan et al. 2021): trained vectors around the spelled text.

``P`` vectors of the source's embedding width are placed before the sequence (``position=
prefix``) or split before and after it (``position=around``); the sequence itself is spelled
as the ``text`` program spells it. The vectors start as the embeddings of ``P`` ordinary
source tokens drawn at random (seeded by the run): a zero start gives NaN gradients in
SmolLM2, and real embeddings sit where the model expects its inputs. The trained tensor
holds the vectors in units of the embeddings' root-mean-square value, so that an Adam step
at the usual learning rate changes them by about 1% of their size.

``subspace=k`` trains ``k`` numbers instead of ``P × D`` (Black-Box Tuning, Sun et al.,
ICML 2022): the vectors are their start plus ``z · A``, ``z`` ``[k]`` trained from zero and
``A`` ``[k, P·D]`` a fixed random projection (Gaussian, variance ``1/k``, drawn from the
program's seed and rebuilt from it, not saved). Zeroth-order estimates (``--optimizer rgf``,
``spsa-gc``) degrade with every perturbed parameter, and a prompt's useful changes lie in a
far smaller space than its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..sources.language import LanguageSide
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
    subspace: int = field(
        default=0,
        metadata={
            "help": "train k numbers projected onto the prompt by a fixed random matrix "
            "(Black-Box Tuning; for --optimizer rgf|spsa-gc); 0: train every vector entry"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.subspace, bool) or not 0 <= self.subspace <= 4096:
            raise ValueError(f"subspace must be 0 (off) … 4096, got {self.subspace!r}")
        if isinstance(self.length, bool) or not 1 <= self.length <= 512:
            raise ValueError(f"length must be 1 … 512 prompt vectors, got {self.length!r}")
        if self.position not in ("prefix", "around"):
            raise ValueError(f"position must be prefix or around, got {self.position!r}")


class SoftPromptProgram(TokenProgram):
    """``prompt`` ``[P, D]`` trained; the symbols spelled as text."""

    vectors: torch.Tensor  # [P, D] trained, or (subspace) the saved start
    projection: torch.Tensor  # [k, P·D] (subspace only; rebuilt from the seed)

    def __init__(
        self, config: SoftPromptConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
    ) -> None:
        super().__init__(config, input_shape, source_size)
        self.count = int(config.length)
        self.split = self.count // 2 if config.position == "around" else self.count
        self.seed = int(config.seed)
        self.subspace = int(config.subspace)
        start = torch.zeros(self.count, self.width)
        if self.subspace:
            # the start is saved (a buffer); only z trains; A is rebuilt from the seed
            self.register_buffer("vectors", start)
            self.z = nn.Parameter(torch.zeros(self.subspace))
            generator = torch.Generator().manual_seed(self.seed + 1)
            projection = torch.randn(self.subspace, self.count * self.width, generator=generator)
            self.register_buffer("projection", projection / self.subspace**0.5, persistent=False)
        else:
            self.vectors = nn.Parameter(start)
        self.unit = 1.0  # the embeddings' root-mean-square value, read from the source

    def extra_positions(self) -> int:
        return self.count

    def on_bind(self, source: LanguageSide) -> None:
        ordinary = torch.tensor(source.ordinary_tokens())
        generator = torch.Generator().manual_seed(self.seed)
        pick = ordinary[torch.randperm(len(ordinary), generator=generator)[: self.count]]
        self.unit = float(self.table.pow(2).mean().sqrt())
        with torch.no_grad():
            self.vectors.copy_(self.table[pick] / self.unit)

    def symbol_table(self) -> torch.Tensor:
        return self.spelled_embeddings()

    def prompt_vectors(self) -> torch.Tensor:
        """The prompt ``[P, D]`` in the embeddings' own scale."""
        vectors = self.vectors
        if self.subspace:
            vectors = vectors + (self.z @ self.projection).view(self.count, self.width)
        return vectors * self.unit

    def prompt(self) -> tuple[torch.Tensor, torch.Tensor]:
        vectors = self.prompt_vectors()
        return vectors[: self.split], vectors[self.split :]

    def describe(self) -> dict[str, object]:
        extra = {"subspace": self.subspace} if self.subspace else {}
        return {**super().describe(), "prompt_vectors": self.count, **extra}

    @torch.no_grad()
    def explain(self, top: int = 5) -> list[tuple[str, list[tuple[str, float]]]]:
        """Each prompt vector's nearest source tokens (cosine), then the spelled symbols."""
        vectors = self.prompt_vectors()
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
