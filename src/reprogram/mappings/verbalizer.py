"""``verbalizer``: each class read from the next-token probability of a word that names it.

For a source with vocabulary logits (``smollm2-135m``): class ``k`` scores the log of the
probability the frozen model gives to the token of its verbalizer word, as in PET and WARP.
The words are the class names by default, or ``words=no,yes`` (one per class, in class
order; ``words=no|yes`` says the same where commas separate options, as in ``bench``'s
method names). A word is matched to the vocabulary's token for it as it starts a word in text
(``Ġyes``), else the token itself (``yes``), in its own case first and then in any case,
else the longest token that spells its start; the chosen tokens are in ``config.json`` and
``mapping.png``. Nothing is trained or counted (``semantic`` chooses by meaning,
``flm``/``ilm`` by counts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from ..errors import ReprogramError
from . import MAPPINGS
from .base import GroupedMapping

#: How tokenizers mark the start of a word (BPE's ``Ġ``, SentencePiece's ``▁``).
WORD_START = ("Ġ", "▁")


@dataclass
class VerbalizerConfig:
    words: str = field(
        default="",
        metadata={
            "help": "one word per class, separated by ',' or '|', in class order (default: names)"
        },
    )


def match_token(word: str, tokens: list[str]) -> int:
    """Index of the token that spells ``word`` (see the module doc); -1 when none does."""
    word = word.strip()
    key = word.lower()
    if not key:
        return -1
    exact = [_plain(t, lower=False) for t in tokens]  # word-start marks as a leading space
    spelled = [t.lower() for t in exact]
    for forms, form in ((exact, " " + word), (exact, word), (spelled, " " + key), (spelled, key)):
        if form in forms:
            return forms.index(form)
    best, length = -1, 0
    for i, token in enumerate(spelled):
        bare = token.lstrip(" ")
        if bare and key.startswith(bare) and len(bare) > length:
            best, length = i, len(bare)
    return best


def _plain(token: str, lower: bool = True) -> str:
    for mark in WORD_START:
        token = token.replace(mark, " ")
    return token.lower() if lower else token


class VerbalizerMapping(GroupedMapping):
    """``groups`` ``[K_t, 1]``: the token of each class's word, chosen in :meth:`bind_names`."""

    scores_untrained = True  # its table is fixed when built: --epochs 0 is zero-shot

    fitted: torch.Tensor  # buffer: whether the tokens were chosen

    def __init__(self, num_source: int, num_target: int, config: VerbalizerConfig) -> None:
        super().__init__(num_source, num_target, 1)
        words = [w.strip() for w in re.split(r"[,|]", config.words)] if config.words else []
        if words and len(words) != num_target:
            raise ValueError(f"words gives {len(words)} words for {num_target} classes")
        self.words = words
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def bind_names(self, source_names: list[str], target_names: list[str]) -> None:
        if len(source_names) != self.num_source:
            raise ReprogramError("the verbalizer needs the source's token names")
        words = self.words or list(target_names)
        chosen = [match_token(w, source_names) for w in words]
        missing = [w for w, i in zip(words, chosen, strict=True) if i < 0]
        if missing:
            raise ReprogramError(
                f"the verbalizer found no token for {', '.join(map(repr, missing))}; give "
                "words the source's vocabulary has with --mapping-opt words=no,yes."
            )
        if len(set(chosen)) != len(chosen):
            raise ReprogramError(
                f"the verbalizer words {words} map to the same token for two classes; give "
                "distinct words with --mapping-opt words=…"
            )
        self.groups.copy_(torch.tensor(chosen, dtype=torch.long).view(-1, 1))
        self.fitted.fill_(True)


@MAPPINGS.register(
    "verbalizer",
    config=VerbalizerConfig,
    help="each class read from the next-token probability of a word naming it (PET, WARP)",
)
def build_verbalizer(
    config: VerbalizerConfig, num_source: int, num_target: int
) -> VerbalizerMapping:
    return VerbalizerMapping(num_source, num_target, config)
