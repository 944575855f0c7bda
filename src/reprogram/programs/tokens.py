"""Shared machinery of token programs: target symbols → input embeddings of a language source.

A token program maps target token ids ``[B, L]`` (``0`` pads the end; id ``i + 1`` is
``vocabulary[i]``) to :class:`~reprogram.sources.language.TokenInputs` (embeddings
``[B, T, D]`` and a mask) for a frozen language source. Every target symbol takes one
position; how a symbol becomes an embedding is what each program learns (or not):

- ``text``: the source's own embedding of the symbol spelled as text (the mean over the
  tokens that spell it, when it takes several): nothing is trained.
- ``soft-prompt``: the same, with ``P`` trained vectors before (or around) the sequence.
- ``dictionary``: each symbol a trained combination of source token embeddings.

The source's special tokens frame the sequence as its tokenizer would (``[CLS] … [SEP]`` for
BERT), and batches are cut to their longest row, so padding costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..batching import length_groups
from ..errors import DataError, ReprogramError
from ..sources.base import Source
from ..sources.language import LanguageSide, TokenInputs, public_language

#: The most symbols a target alphabet may have (a dictionary program holds symbols × atoms).
MAX_SYMBOLS = 4096


@dataclass
class TokenConfig:
    """Options shared by token programs (``vocabulary`` is filled in from the target)."""

    vocabulary: str = field(
        default="",
        metadata={"help": "the target's symbols, in id order (set from the target data)"},
    )
    separator: str = field(
        default=" ",
        metadata={"help": "text before each symbol when it is spelled by the source tokenizer"},
    )

    def __post_init__(self) -> None:
        if not isinstance(self.vocabulary, str) or len(self.vocabulary) > MAX_SYMBOLS:
            raise ValueError(
                f"vocabulary must be a string of at most {MAX_SYMBOLS:,} symbols (the target's "
                "alphabet)"
            )
        if len(set(self.vocabulary)) != len(self.vocabulary):
            raise ValueError("vocabulary repeats a symbol")


def check_shapes(input_shape: tuple[int, ...], source_size: tuple[int, ...]) -> None:
    """Token programs take sequences ``[L]`` to a language source (input ``[T, D]``)."""
    if len(input_shape) != 1:
        raise ReprogramError(
            f"token programs (text, soft-prompt, dictionary) read sequences of symbols; this "
            f"target's inputs have shape {list(input_shape)}. Leave --program out for images "
            "and series."
        )
    if len(source_size) != 2:
        raise ReprogramError(
            f"token programs need a language source (minilm-l6, smollm2-135m); this source "
            f"takes {list(source_size)}."
        )


class TokenProgram(nn.Module):
    """Base of token programs. Subclasses implement :meth:`symbol_table` (and may add
    trained positions with :meth:`extra_positions`).

    Built from the shapes alone; :meth:`bind_source` then reads the source's embeddings and
    tokenizer (before any weights are loaded into the program).
    """

    plot_kind = "tokens"
    # non-persistent buffers set by bind_source (not saved: rebuilt from the source)
    table: torch.Tensor  # [V_s, D] the source's input embeddings (shared storage)
    spelled: torch.Tensor  # [V_t, S] source ids spelling each symbol, -1 padded
    before: torch.Tensor  # [A] special ids before the text
    after: torch.Tensor  # [Z] special ids after it

    def __init__(
        self, config: TokenConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
    ) -> None:
        super().__init__()
        check_shapes(input_shape, source_size)
        if not config.vocabulary:
            raise ReprogramError(
                "token programs need the target's vocabulary (set from a sequence target); "
                "give a sequence target such as amp, b3db or csv:PATH."
            )
        self.vocabulary = list(config.vocabulary)
        self.separator = config.separator
        self.width = int(source_size[1])
        self.max_positions = int(source_size[0])
        self.length = int(input_shape[0])
        for name in ("table", "spelled", "before", "after"):
            self.register_buffer(name, torch.empty(0), persistent=False)
        self.token_names: list[str] = []
        self.source_name, self.source_positions = "", 0  # set by bind_source

    @property
    def num_symbols(self) -> int:
        return len(self.vocabulary)

    def row_groups(self, ids: torch.Tensor) -> list[torch.Tensor] | None:
        """Sub-batches of rows of similar length (:func:`~reprogram.batching.length_groups`):
        each batch is cut to its longest row, so a random batch otherwise pays for its
        longest sequence in every row."""
        return length_groups(ids)

    def bind_source(self, source: Source) -> None:
        """Read the embeddings and the spelling of every symbol from ``source``."""
        lm = public_language(source)  # a query-only model shows its input side too
        if lm is None:
            raise ReprogramError(
                f"token programs need a language source (minilm-l6, smollm2-135m); "
                f"{source.name!r} is not one."
            )
        spelled = [lm.symbol_ids(s, self.separator) for s in self.vocabulary]
        width = max(len(ids) for ids in spelled)
        index = torch.full((len(spelled), width), -1, dtype=torch.long)
        for i, ids in enumerate(spelled):
            index[i, : len(ids)] = torch.tensor(ids)
        before, after = lm.special_ids()
        self.table = lm.embedding_matrix()
        self.spelled = index
        self.before = torch.tensor(before, dtype=torch.long)
        self.after = torch.tensor(after, dtype=torch.long)
        every = list(range(len(self.table)))
        self.token_names = list(lm.tokenizer.convert_ids_to_tokens(every))
        self.source_name, self.source_positions = lm.name, int(lm.max_positions)
        needed = len(before) + self.extra_positions() + self.length + len(after)
        if needed > lm.max_positions:
            raise ReprogramError(self._too_long(lm.name, lm.max_positions, needed))
        self.on_bind(lm)

    def _too_long(self, source: str, positions: int, needed: int) -> str:
        """Why the target's longest sequence does not fit, and what to change: trim the
        rows, or (a prompt) give fewer trained positions, or both."""
        prompt = self.extra_positions()
        fits = positions - (needed - self.length)  # symbols that fit beside the prompt
        room = positions - (needed - prompt)  # prompt vectors that fit beside the rows
        fixes = [f"drop or trim the rows longer than {fits} symbols"] if fits >= 1 else []
        if prompt and room >= 1:
            fixes.append(f"give fewer prompt vectors (--program-opt length={room} or less)")
        if not fixes:
            fixes.append("give fewer prompt vectors and drop or trim the longest rows")
        what = "; or ".join(fixes)
        return (
            f"{source} takes at most {positions} positions; sequences of {self.length} "
            f"symbols (the target's longest) with this program"
            + (f" ({prompt} trained positions)" if prompt else "")
            + f" need {needed}. {what[0].upper()}{what[1:]}; or use a source with more "
            "positions."
        )

    def on_bind(self, source: LanguageSide) -> None:
        """Initialise what depends on the source (subclasses)."""

    def embeddings(self) -> torch.Tensor:
        """The source's input embeddings ``[V_s, D]`` the program reads (frozen here)."""
        return self.table

    def spelled_embeddings(self) -> torch.Tensor:
        """``[V_t, D]``: each symbol's spelling as the source embeds it (mean over tokens)."""
        table = self.embeddings()
        valid = (self.spelled >= 0).to(table.dtype)  # [V_t, S]
        rows = table[self.spelled.clamp_min(0)]  # [V_t, S, D]
        return (rows * valid.unsqueeze(-1)).sum(1) / valid.sum(1, keepdim=True)

    def symbol_table(self) -> torch.Tensor:
        """``[V_t, D]`` the embedding each target symbol is written as."""
        raise NotImplementedError

    def extra_positions(self) -> int:
        """Trained positions the program adds (a soft prompt's ``P``)."""
        return 0

    def max_symbols(self) -> int:
        """The most symbols a sequence may have: the source's positions less its special
        tokens and the program's trained positions (after :meth:`bind_source`)."""
        return self.source_positions - len(self.before) - len(self.after) - self.extra_positions()

    def prompt(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Trained vectors ``([P1, D], [P2, D])`` before and after the sequence."""
        empty = self.table.new_zeros(0, self.width)
        return empty, empty

    def forward(self, ids: torch.Tensor) -> TokenInputs:
        """Token ids ``[B, L]`` → embeddings ``[B, T, D]`` and mask ``[B, T]``.

        ``T = A + P1 + L_b + P2 + Z``: special tokens before, prompt, the batch's longest
        row ``L_b``, prompt after, special tokens after; each row's closing part follows its
        own last symbol, and the mask covers exactly the real positions.
        """
        if self.table.numel() == 0:
            raise ReprogramError("the token program was not bound to its source (a bug)")
        if ids.dtype != torch.long or ids.dim() != 2:
            raise ReprogramError(
                f"token programs take token ids [B, L] (int64); got {ids.dtype} {list(ids.shape)}"
            )
        low, high = (int(ids.min()), int(ids.max())) if ids.numel() else (0, 0)
        if low < 0 or high > self.num_symbols:
            raise DataError(
                f"token ids run from {low} to {high}, but this model reads 0 (padding) to "
                f"{self.num_symbols} (its {self.num_symbols} symbols); encode text with "
                "reprogram.encode_sequences(model, texts)."
            )
        n = (ids != 0).sum(1)  # [B]
        longest = max(int(n.max()) if len(n) else 0, 1)
        ids = ids[:, :longest]
        symbols = self.symbol_table()  # [V_t, D]
        padded = torch.cat([symbols.new_zeros(1, self.width), symbols])  # id 0 → zeros
        tokens = padded[ids]  # [B, L_b, D]
        b = ids.shape[0]
        p_before, p_after = self.prompt()
        table = self.embeddings()
        head = torch.cat([table[self.before], p_before])  # [A', D]
        tail = torch.cat([p_after, table[self.after]])  # [Z', D]
        a, z = head.shape[0], tail.shape[0]
        if a + longest + z > self.source_positions:  # longer than any training sequence
            raise DataError(
                f"a sequence of {longest} symbols needs {a + longest + z} positions with this "
                f"program; {self.source_name} takes at most {self.source_positions}: score "
                f"sequences of at most {self.source_positions - a - z} symbols."
            )
        full = torch.cat([head.expand(b, -1, -1), tokens, tail.expand(b, -1, -1)], dim=1)
        t = torch.arange(a + longest + z, device=ids.device)  # output positions
        end = a + n.unsqueeze(1)  # [B, 1] first position after each row's symbols
        source_pos = torch.where(t < end, t, a + longest + (t - end))
        mask = t < end + z
        source_pos = torch.where(mask, source_pos, t).clamp_max(full.shape[1] - 1)
        embeds = full.gather(1, source_pos.unsqueeze(-1).expand(-1, -1, self.width))
        return TokenInputs(embeds, mask.long())

    def describe(self) -> dict[str, object]:
        return {"symbols": self.num_symbols, "length": self.length}

    def token_name(self, index: int) -> str:
        """A source token's text, readable (BPE's ``Ġ`` space shown as ``_``)."""
        name = self.token_names[index] if index < len(self.token_names) else f"#{index}"
        return str(name).replace("Ġ", "_").replace("▁", "_")

    @torch.no_grad()
    def explain(self, top: int = 5) -> list[tuple[str, list[tuple[str, float]]]]:
        """What each target symbol is made of: ``(symbol, [(source token, weight), …])``,
        the ``top`` largest weights (for ``program.png``). Here: the tokens spelling it."""
        rows = []
        for symbol, ids in zip(self.vocabulary, self.spelled.tolist(), strict=True):
            valid = [i for i in ids if i >= 0]
            rows.append((symbol, [(self.token_name(i), 1.0 / len(valid)) for i in valid[:top]]))
        return rows

    @torch.no_grad()
    def nearest_tokens(self, vectors: torch.Tensor, top: int) -> list[list[tuple[str, float]]]:
        """For each vector ``[P, D]``, the ``top`` source tokens most similar by cosine."""
        table = torch.nn.functional.normalize(self.table, dim=1)
        sims = torch.nn.functional.normalize(vectors, dim=1) @ table.T  # [P, V_s]
        best = sims.topk(top, dim=1)
        return [
            [(self.token_name(int(i)), float(v)) for v, i in zip(vals, idx, strict=True)]
            for vals, idx in zip(best.values, best.indices, strict=True)
        ]
