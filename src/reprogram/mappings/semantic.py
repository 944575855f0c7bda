"""``semantic``: each target class takes the source labels whose names mean the same.

The target's class names and the source's label names are embedded by a sentence encoder
(``minilm-l6``, packaged offline) and compared by cosine similarity ``S`` ``[K_t, K_s]``.
Each class then owns ``m`` distinct source labels, chosen greedily by similarity (the most
similar (class, label) pair first, as FLM does with counts), and scores the log of their mean
source probability, as ``random`` does. Nothing is trained or counted: the choice needs no
target examples, only names, and is fixed before training (saved in the artifact, so loading
needs no encoder). A name that means nothing (class ``"3"``) still gets a label, so read the
chosen labels in ``config.json`` or ``mapping.png`` before trusting it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from ..errors import ReprogramError
from . import MAPPINGS
from .base import GroupedMapping, greedy_one_to_one


@dataclass
class SemanticConfig:
    labels_per_class: int = field(
        default=1, metadata={"help": "source labels averaged for each target class (m)"}
    )
    encoder: str = field(
        default="minilm-l6",
        metadata={"help": "sentence encoder: minilm-l6 (packaged, offline) or hf:NAME"},
    )

    def __post_init__(self) -> None:
        if self.labels_per_class < 1:
            raise ValueError(f"labels_per_class must be at least 1, got {self.labels_per_class}")


def readable(name: str) -> str:
    """A label or class name as words: BPE's word-start mark ``Ġ`` and ``_`` become spaces."""
    return re.sub(r"\s+", " ", name.replace("Ġ", " ").replace("_", " ")).strip() or name


def distinct_groups(similarity: torch.Tensor, m: int) -> torch.Tensor:
    """``[K_t, m]`` distinct source labels per class from ``similarity`` ``[K_t, K_s]``.

    Round ``r`` gives every class one more label by FLM's greedy one-to-one rule over the
    labels no class holds yet, so each class's first label is its best free match.
    """
    k_t, k_s = similarity.shape
    if m * k_t > k_s:
        raise ValueError(f"{k_t} classes × {m} labels needs {m * k_t} source labels, got {k_s}")
    work = similarity.to(torch.float64) + 2.0  # cosine in [-1, 1] → [1, 3]: above every mark
    rounds = []
    for _ in range(m):
        chosen = greedy_one_to_one(work)
        rounds.append(chosen)
        work[:, chosen] = 0.0  # held: below every free label, above greedy's own -1 marks
    return torch.stack(rounds, dim=1)


class SemanticMapping(GroupedMapping):
    """``groups`` ``[K_t, m]`` chosen by name similarity in :meth:`bind_names`; the cosine
    similarity of each chosen label is kept (``similarity`` ``[K_t, m]``) for the table."""

    scores_untrained = True  # its table is fixed when built: --epochs 0 is zero-shot

    # buffers
    similarity: torch.Tensor
    fitted: torch.Tensor

    def __init__(self, num_source: int, num_target: int, config: SemanticConfig) -> None:
        super().__init__(num_source, num_target, config.labels_per_class)
        self.config = config
        self.register_buffer("similarity", torch.zeros(num_target, config.labels_per_class))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self._checked = False  # fitted read once, not at every step (a GPU sync)

    def bind_names(self, source_names: list[str], target_names: list[str]) -> None:
        from ..sources.text_encoder import embed_texts  # lazy: transformers

        if len(source_names) != self.num_source or len(target_names) != self.num_target:
            raise ReprogramError(
                f"the semantic mapping needs a name for each of the {self.num_source} source "
                f"labels and {self.num_target} target classes; got {len(source_names)} and "
                f"{len(target_names)}."
            )
        encoder = self.config.encoder
        targets = embed_texts(encoder, [readable(n) for n in target_names])
        sources = embed_texts(encoder, [readable(n) for n in source_names])
        similarity = targets @ sources.T  # [K_t, K_s], unit vectors: cosine
        groups = distinct_groups(similarity, self.groups.shape[1])
        self.groups.copy_(groups)
        self.similarity.copy_(similarity.gather(1, groups).to(self.similarity))
        self.fitted.fill_(True)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        if not self._checked:
            if not bool(self.fitted):
                raise RuntimeError("the semantic mapping needs bind_names() before use")
            self._checked = True
        return super().forward(logits)

    def table(self, label_names: list[str], top: int = 3) -> list[dict[str, object]]:
        rows = super().table(label_names, top)
        for row, sims in zip(rows, self.similarity.tolist(), strict=True):
            row["similarity"] = [round(s, 4) for s in sims]
        return rows


@MAPPINGS.register(
    "semantic",
    config=SemanticConfig,
    help="m source labels per class whose names are closest to the class name (text encoder)",
)
def build_semantic(config: SemanticConfig, num_source: int, num_target: int) -> SemanticMapping:
    return SemanticMapping(num_source, num_target, config)
