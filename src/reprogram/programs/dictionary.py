"""``dictionary`` (R2DL, Vinod, Chen and Das): each target symbol a learned combination of
source token embeddings.

Symbol ``v`` is written as ``θ[v] · E[atoms]``: ``θ`` ``[V_t, M]`` are trained coefficients
over ``M`` atoms, source tokens whose embeddings ``E`` stay frozen. The atoms are the tokens
that spell the target's symbols followed by the vocabulary's first ordinary tokens
(``atoms=M``, 4,096 by default; ``atoms=0`` takes the whole vocabulary). ``θ`` starts where
the ``text`` program is (weight 1 on the tokens spelling each symbol), so training starts
from the spelled sequence. ``θ`` is stored as ``√M · θ`` (the trained tensor ``theta``), so
that one Adam step at the usual learning rate moves a symbol's embedding by about that rate
times the embeddings' own scale, whatever ``M`` is. ``k=K`` keeps only each symbol's ``K``
largest coefficients in the forward pass (R2DL's k-sparse code; ``k=0``, the default, keeps all);
``l1=λ`` instead (or as well) adds ``λ · mean_v Σ_j |θ[v, j]|`` to the training loss, R2DL's
L1-regularised code (through the model's ``penalty()`` hook).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..sources.language import LanguageSide
from . import PROGRAMS
from .tokens import TokenConfig, TokenProgram


@dataclass
class DictionaryConfig(TokenConfig):
    atoms: int = field(
        default=4096,
        metadata={"help": "source tokens the symbols combine (0: the whole vocabulary)"},
    )
    k: int = field(default=0, metadata={"help": "keep the k largest coefficients (0: all)"})
    l1: float = field(
        default=0.0,
        metadata={
            "help": "L1 penalty λ on the coefficients, added to the training loss: λ times the "
            "mean over symbols of the sum of |θ| (R2DL's sparse code; 0: none)"
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("atoms", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if not (self.l1 >= 0 and self.l1 < float("inf")):
            raise ValueError(f"l1 must be a finite number >= 0, got {self.l1!r}")


class DictionaryProgram(TokenProgram):
    """``θ`` ``[V_t, M]`` over the embeddings of ``atoms`` ``[M]`` (a saved buffer)."""

    atoms: torch.Tensor  # [M] source token ids

    def __init__(
        self, config: DictionaryConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
    ) -> None:
        super().__init__(config, input_shape, source_size)
        self.requested = int(config.atoms)
        self.k = int(config.k)
        self.l1 = float(config.l1)
        self.register_buffer("atoms", torch.zeros(0, dtype=torch.long))
        self.theta = nn.Parameter(torch.zeros(0, 0))

    def on_bind(self, source: LanguageSide) -> None:
        spelled = [int(i) for i in self.spelled.flatten().tolist() if i >= 0]
        first = list(dict.fromkeys(spelled))
        taken = set(first)
        ordinary = [i for i in source.ordinary_tokens() if i not in taken]
        everything = len(first) + len(ordinary)
        size = everything if self.requested == 0 else max(self.requested, len(first))
        atoms = torch.tensor((first + ordinary)[:size], dtype=torch.long)
        theta = torch.zeros(self.num_symbols, len(atoms))
        where = {int(a): j for j, a in enumerate(atoms.tolist())}
        for v, row in enumerate(self.spelled.tolist()):
            ids = [i for i in row if i >= 0]
            for i in ids:
                theta[v, where[i]] += 1.0 / len(ids)
        self.atoms = atoms
        self.theta = nn.Parameter(theta * self.scale_for(len(atoms)))

    @staticmethod
    def scale_for(atoms: int) -> float:
        """``√M``: ``theta`` holds the coefficients times this."""
        return float(atoms) ** 0.5

    def coefficients(self) -> torch.Tensor:
        """``θ`` ``[V_t, M]`` with all but each row's ``k`` largest magnitudes zeroed (``k=0``:
        all)."""
        theta = self.theta / self.scale_for(self.theta.shape[1])
        if self.k == 0 or self.k >= theta.shape[1]:
            return theta
        keep = theta.abs().topk(self.k, dim=1).indices
        return theta * torch.zeros_like(theta).scatter_(1, keep, 1.0)

    def penalty(self) -> torch.Tensor | None:
        """``l1`` × the mean over symbols of ``Σ|θ|`` (``None`` when ``l1`` is 0)."""
        if self.l1 == 0:
            return None
        theta = self.theta / self.scale_for(self.theta.shape[1])
        return self.l1 * theta.abs().sum(1).mean()

    def symbol_table(self) -> torch.Tensor:
        return self.coefficients() @ self.table[self.atoms]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "atoms": int(self.atoms.numel()), "k": self.k, "l1": self.l1}

    @torch.no_grad()
    def explain(self, top: int = 5) -> list[tuple[str, list[tuple[str, float]]]]:
        """Each symbol's ``top`` largest coefficients and the source tokens they weigh."""
        theta = self.coefficients()
        best = theta.abs().topk(min(top, theta.shape[1]), dim=1).indices
        return [
            (
                symbol,
                [(self.token_name(int(self.atoms[j])), float(theta[v, j])) for j in best[v]],
            )
            for v, symbol in enumerate(self.vocabulary)
        ]


@PROGRAMS.register(
    "dictionary",
    config=DictionaryConfig,
    help="R2DL: each symbol a trained combination of source token embeddings",
)
def build_dictionary(
    config: DictionaryConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> DictionaryProgram:
    return DictionaryProgram(config, input_shape, source_size)
