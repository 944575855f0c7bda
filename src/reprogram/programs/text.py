"""``text``: the sequence spelled as text through the source's own tokenizer; nothing trained.

Every target symbol becomes the source's embedding of that symbol as it reads in text (after
a space; the mean embedding when the tokenizer needs several tokens for it), framed by the
source's special tokens. With ``--mapping linear`` it is a linear probe on the frozen
language model's states, the reference point the trained token programs must beat.
"""

from __future__ import annotations

import torch

from . import PROGRAMS
from .tokens import TokenConfig, TokenProgram


class TextProgram(TokenProgram):
    """Symbols as the source spells them (no parameters)."""

    #: nothing trains and the same sequence always reads the same: the model may keep the
    #: source's output per example (:mod:`reprogram.output_cache`)
    caches_source_outputs = True

    def symbol_table(self) -> torch.Tensor:
        return self.spelled_embeddings()


@PROGRAMS.register(
    "text", config=TokenConfig, help="sequences spelled by the source's tokenizer (untrained)"
)
def build_text(
    config: TokenConfig, input_shape: tuple[int, ...], source_size: tuple[int, ...]
) -> TextProgram:
    return TextProgram(config, input_shape, source_size)
