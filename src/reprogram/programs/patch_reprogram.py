"""``patch-reprogram``: Time-LLM's input side (Jin et al., ICLR 2024) for a frozen language model.

A lookback window ``[B, 1, L]`` (one variable) is instance-normalised, cut into ``P``
patches (``patch`` values every ``stride`` steps), each patch embedded to ``width``, and
*reprogrammed*: multi-head cross-attention from the patches onto ``K`` text prototypes, each
prototype a trained linear combination of ``atoms`` of the source's own input embeddings (the
first ordinary tokens of its vocabulary). The result, one ``D``-dimensional vector per patch,
is what the frozen language model reads. Optional:

- ``prompt``: Time-LLM's prompt-as-prefix, a sentence (e.g. the data set's description)
  spelled by the source's tokenizer before the patches, with the window's statistics
  (minimum, maximum, median, trend) when ``statistics=1``;
- ``attention_layers=N``: ``N`` trained self-attention blocks after the reprogramming (with
  a ``#depth=0`` source: Tan et al.'s "LM replaced by attention" ablation).

The program declares ``output_positions = P``: the source answers the last ``P`` positions'
states ``[B, P, D]``, which the ``horizon`` mapping projects to the forecast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ReprogramError
from ..forecast import InstanceNorm, patch_count, patches
from ..sources.base import Source
from ..sources.language import LanguageSource, TokenInputs, public_language
from . import PROGRAMS


@dataclass
class PatchReprogramConfig:
    """Options of ``patch-reprogram``."""

    patch: int = field(default=16, metadata={"help": "patch length (values per patch)"})
    stride: int = field(default=8, metadata={"help": "steps between patch starts"})
    width: int = field(default=32, metadata={"help": "patch embedding width"})
    heads: int = field(default=8, metadata={"help": "heads of the reprogramming attention"})
    keys: int = field(default=16, metadata={"help": "width of each head"})
    prototypes: int = field(default=100, metadata={"help": "text prototypes K"})
    atoms: int = field(
        default=1000, metadata={"help": "source token embeddings the prototypes combine"}
    )
    prompt: str = field(
        default="", metadata={"help": "a sentence before the patches (prompt-as-prefix)"}
    )
    statistics: bool = field(
        default=False, metadata={"help": "add each window's min, max, median and trend"}
    )
    attention_layers: int = field(
        default=0, metadata={"help": "trained self-attention blocks after reprogramming"}
    )
    dropout: float = field(default=0.1, metadata={"help": "dropout on the patch embeddings"})
    seed: int = field(default=0, metadata={"help": "seeds the initial weights"})

    def __post_init__(self) -> None:
        for name in ("patch", "stride", "width", "heads", "keys", "prototypes", "atoms"):
            value = getattr(self, name)
            if isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.attention_layers < 0:
            raise ValueError(f"attention_layers must be >= 0, got {self.attention_layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class SelfAttentionBlock(nn.Module):
    """``x + MHA(LN(x))``: one trained self-attention layer over the positions."""

    def __init__(self, width: int) -> None:
        super().__init__()
        heads = next(h for h in (8, 4, 2, 1) if width % h == 0)
        self.norm = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x)
        return x + self.attention(h, h, h, key_padding_mask=pad, need_weights=False)[0]


class PatchReprogram(nn.Module):
    """``[B, 1, L]`` windows → :class:`TokenInputs` of ``[prompt +] P`` reprogrammed patches."""

    plot_kind = "forecast"
    # non-persistent buffers set by bind_source (rebuilt from the source, not saved)
    table: torch.Tensor  # [atoms, D] source embeddings the prototypes combine
    vocab: torch.Tensor  # [V_s, D] all input embeddings (spells the prompt)

    def __init__(self, config: PatchReprogramConfig, lookback: int, dim: int) -> None:
        super().__init__()
        self.config = config
        self.lookback = lookback
        try:
            self.output_positions = patch_count(lookback, config.patch, config.stride)
        except ValueError as exc:
            raise ReprogramError(f"patch-reprogram: {exc}; lower --program-opt patch.") from None
        inner = config.heads * config.keys
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            self.norm = InstanceNorm()
            self.embed = nn.Linear(config.patch, config.width)
            self.drop = nn.Dropout(config.dropout)
            self.combine = nn.Linear(config.atoms, config.prototypes, bias=False)
            self.query = nn.Linear(config.width, inner)
            self.key = nn.Linear(dim, inner)
            self.value = nn.Linear(dim, inner)
            self.out = nn.Linear(inner, dim)
            self.mixers = nn.ModuleList(
                SelfAttentionBlock(dim) for _ in range(config.attention_layers)
            )
        self.dim = dim
        self.tokenizer: object | None = None
        self.register_buffer("table", torch.zeros(config.atoms, dim), persistent=False)
        self.register_buffer("vocab", torch.zeros(1, dim), persistent=False)

    def bind_source(self, source: Source) -> None:
        """Read the source's input embeddings (prototype atoms, prompt spelling)."""
        if public_language(source) is not source:
            if public_language(source) is not None:  # query:NAME
                raise ReprogramError(
                    f"patch-reprogram reads every position's states of the language model, "
                    f"which {source.name} (answering queries only) does not serve. Train it "
                    "with gradients (--optimizer gradient, the default)."
                )
            raise ReprogramError(
                f"patch-reprogram feeds a language model (smollm2-135m, minilm-l6, hf:NAME); "
                f"{source.name!r} is not one."
            )
        assert isinstance(source, LanguageSource)
        ordinary = source.ordinary_tokens()
        if len(ordinary) < self.config.atoms:
            raise ReprogramError(
                f"patch-reprogram: atoms={self.config.atoms}, but {source.name} has "
                f"{len(ordinary)} ordinary tokens; lower --program-opt atoms."
            )
        embeddings = source.embedding_matrix()
        self.table = embeddings[torch.tensor(ordinary[: self.config.atoms])].clone()
        self.vocab = embeddings
        self.tokenizer = source.tokenizer

    def prototypes(self) -> torch.Tensor:
        """The ``K`` text prototypes ``[K, D]``: trained combinations of the atoms."""
        return self.combine.weight @ self.table

    def reprogram(self, x: torch.Tensor) -> torch.Tensor:
        """Patch vectors in the source's embedding space, ``[B, P, D]``."""
        c = self.config
        z = patches(self.norm(x), c.patch, c.stride)  # [B, P, patch]
        q = self.query(self.drop(self.embed(z)))  # [B, P, heads·keys]
        protos = self.prototypes()
        k, v = self.key(protos), self.value(protos)  # [K, heads·keys]
        b, p, _ = q.shape
        q = q.view(b, p, c.heads, c.keys).transpose(1, 2)  # [B, h, P, e]
        k = k.view(-1, c.heads, c.keys).transpose(0, 1)  # [h, K, e]
        v = v.view(-1, c.heads, c.keys).transpose(0, 1)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c.keys), dim=-1)
        mixed = (weights @ v).transpose(1, 2).reshape(b, p, -1)  # [B, P, heads·keys]
        return self.out(mixed)

    def prompts(self, x: torch.Tensor) -> list[str]:
        """The prefix text of each window ``[B, 1, L]``."""
        c = self.config
        if not c.statistics:
            return [c.prompt] * x.shape[0]
        flat = x.reshape(x.shape[0], -1).detach().float().cpu()
        lo, hi, mid = flat.min(1).values, flat.max(1).values, flat.median(1).values
        rise = flat[:, -1] - flat[:, 0]
        return [
            f"{c.prompt} Input statistics: min {a:.2f}, max {b:.2f}, median {m:.2f}, the trend "
            f"is {'upward' if r > 0 else 'downward'}.".strip()
            for a, b, m, r in zip(
                lo.tolist(), hi.tolist(), mid.tolist(), rise.tolist(), strict=True
            )
        ]

    def prefix(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The prompt's embeddings ``[B, T, D]`` and mask ``[B, T]`` (padding at its end)."""
        if not self.config.prompt and not self.config.statistics:
            return None
        tokenizer = self.tokenizer
        if tokenizer is None:
            raise ReprogramError("patch-reprogram: bind_source was not called before use.")
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in self.prompts(x)]  # type: ignore[operator]
        longest = max(len(i) for i in ids)
        index = torch.zeros(len(ids), longest, dtype=torch.long)
        mask = torch.zeros(len(ids), longest)
        for r, row in enumerate(ids):
            index[r, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[r, : len(row)] = 1.0
        return self.vocab[index.to(self.vocab.device)], mask.to(x.device)

    def forward(self, x: torch.Tensor) -> TokenInputs:
        if x.dim() != 3 or x.shape[1] != 1:
            raise ReprogramError(
                f"patch-reprogram reads windows [B, 1, L]; got {list(x.shape)}."
            )
        embeds = self.reprogram(x)
        mask = torch.ones(embeds.shape[:2], device=embeds.device)
        front = self.prefix(x)
        if front is not None:
            embeds = torch.cat([front[0].to(embeds.dtype), embeds], dim=1)
            mask = torch.cat([front[1], mask], dim=1)
        pad = mask == 0
        for block in self.mixers:
            embeds = block(embeds, pad if bool(pad.any()) else None)
        return TokenInputs(embeds, mask)

    def describe(self) -> dict[str, object]:
        return {"patches": self.output_positions, "prototypes": self.config.prototypes}

    def extra_repr(self) -> str:
        return f"lookback={self.lookback}, patches={self.output_positions}, dim={self.dim}"


def _check(input_shape: tuple[int, ...], source_size: tuple[int, ...]) -> tuple[int, int]:
    if len(input_shape) != 2 or input_shape[0] != 1:
        raise ReprogramError(
            f"patch-reprogram reads forecasting windows [1, L] (a forecast: target); these "
            f"inputs have shape {list(input_shape)}."
        )
    if len(source_size) != 2:
        raise ReprogramError(
            f"patch-reprogram feeds a language model (smollm2-135m, minilm-l6); this source "
            f"takes {list(source_size)}."
        )
    return int(input_shape[1]), int(source_size[1])


@PROGRAMS.register(
    "patch-reprogram",
    config=PatchReprogramConfig,
    help="forecasting (Time-LLM): patches cross-attend to text prototypes of a language model",
)
def build_patch_reprogram(
    config: PatchReprogramConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> PatchReprogram:
    lookback, dim = _check(input_shape, source_size)
    return PatchReprogram(config, lookback, dim)


__all__ = ["PatchReprogram", "PatchReprogramConfig"]
