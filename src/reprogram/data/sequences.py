"""Sequences as reprogram holds them: int64 token ids ``[N, L]`` over a target vocabulary.

A sequence target (``TargetData(modality="sequence")``) spells every example with the symbols
of its ``vocabulary`` (amino acids, SMILES characters, or the characters of a user's text):
symbol ``vocabulary[i]`` has id ``i + 1`` and id ``0`` pads each row at the end, so the valid
length of a row is its number of non-zero ids. The helpers here encode and decode such rows
and refuse bad input with the row that holds it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch

from ..errors import DataError
from .base import Split, TargetData

#: The 20 standard amino acids, one-letter codes.
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: Every character SMILES may use (atoms, bonds, rings, charges, brackets, stereo).
SMILES_CHARACTERS = (
    "ABCDEFGHIKLMNOPRSTUVWXYZ"  # element symbols' capitals (no J or Q exists)
    "abcdefghiklmnoprstuy"  # aromatic atoms and second letters (Cl, Br, Na, Si, Se ...)
    "0123456789%()[]=#$:/\\.+-@*"
)
#: The largest number of symbols in one example (a longer one is refused with its row).
MAX_SEQUENCE = 4096


def alphabet_for(kind: str, sequences: Sequence[str] = ()) -> list[str]:
    """The vocabulary of a sequence ``kind``: ``protein`` (20 amino acids), ``smiles``, or
    ``text`` (the characters that ``sequences`` use, sorted)."""
    if kind == "protein":
        return list(AMINO_ACIDS)
    if kind == "smiles":
        return list(SMILES_CHARACTERS)
    if kind == "text":
        return sorted({c for s in sequences for c in s})
    raise DataError(f"unknown sequence alphabet {kind!r}; use protein, smiles or text.")


def alphabet_of(vocabulary: Sequence[str]) -> str:
    """The ``kind`` whose :func:`alphabet_for` is ``vocabulary``: ``protein``, ``smiles``, or
    ``text`` for any other (a file's own characters)."""
    for kind in ("protein", "smiles"):
        if list(vocabulary) == alphabet_for(kind):
            return kind
    return "text"


def encode(sequences: Sequence[str], vocabulary: Sequence[str], where: str) -> torch.Tensor:
    """Token ids ``[N, L]`` (int64, ``L`` the longest row, ``0`` padding) of ``sequences``.

    Raises:
        DataError: an empty row, a row longer than :data:`MAX_SEQUENCE`, or a character
            outside ``vocabulary`` (named with its row, 1-based, and what to do).
    """
    index = {symbol: i + 1 for i, symbol in enumerate(vocabulary)}
    rows: list[list[int]] = []
    for row, text in enumerate(sequences, start=1):
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}, row {row}: the sequence is empty; remove that row.")
        if len(text) > MAX_SEQUENCE:
            raise DataError(
                f"{where}, row {row}: the sequence has {len(text):,} symbols, more than the "
                f"{MAX_SEQUENCE:,} reprogram takes; cut it or drop that row."
            )
        ids = [index.get(c, 0) for c in text]
        if 0 in ids:
            bad = text[ids.index(0)]
            shown = "".join(vocabulary) if len(vocabulary) <= 40 else f"{len(vocabulary)} symbols"
            raise DataError(
                f"{where}, row {row}: {bad!r} (position {ids.index(0) + 1}) is not in the "
                f"target's alphabet ({shown}); replace or remove it (sequence {text[:40]!r})."
            )
        rows.append(ids)
    if not rows:
        raise DataError(f"{where}: no sequences.")
    out = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
    for i, ids in enumerate(rows):
        out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def pad_to(x: torch.Tensor, length: int) -> torch.Tensor:
    """Token ids ``[N, L]`` padded at the end with 0 to ``[N, length]`` (``length >= L``)."""
    if x.shape[1] >= length:
        return x
    return torch.nn.functional.pad(x, (0, length - x.shape[1]), value=0)


def lengths(x: torch.Tensor) -> torch.Tensor:
    """Valid length of each row of token ids ``[N, L]`` → ``[N]`` (int64)."""
    return (x != 0).sum(1)


def decode(x: torch.Tensor, vocabulary: Sequence[str]) -> list[str]:
    """Token ids ``[N, L]`` back to their strings (padding dropped)."""
    return ["".join(vocabulary[int(i) - 1] for i in row if int(i) > 0) for row in x]


def sequence_batch(
    texts: Sequence[str], vocabulary: Sequence[str], length: int, where: str
) -> torch.Tensor:
    """New sequences for ``predict``: token ids ``[N, max(length, longest)]``.

    ``length`` is the longest training sequence. The models read any length (pooled states,
    composition, a convolution with global pooling), so a longer row is kept, with a note on
    stderr that the model never saw one that long; a language model's own position limit is
    checked when it reads the batch (:class:`~reprogram.programs.tokens.TokenProgram`)."""
    x = encode(texts, vocabulary, where)
    if x.shape[1] > length:
        longer = (lengths(x) > length).nonzero().flatten().tolist()
        rows = ", ".join(str(r + 1) for r in longer[:5]) + (" …" if len(longer) > 5 else "")
        print(
            f"note: {where}: {len(longer)} sequence(s) (row(s) {rows}) are longer than the "
            f"longest training sequence ({length} symbols, the longest here "
            f"{int(lengths(x).max())}); the model never saw sequences that long, so treat "
            "their scores with care.",
            file=sys.stderr,
        )
    return pad_to(x, max(length, x.shape[1]))


__all__ = [
    "AMINO_ACIDS",
    "MAX_SEQUENCE",
    "SMILES_CHARACTERS",
    "alphabet_for",
    "alphabet_of",
    "decode",
    "deduplicate",
    "encode",
    "lengths",
    "pad_to",
    "sequence_batch",
    "sequence_target",
]


def deduplicate(
    sequences: Sequence[str], labels: Sequence[int]
) -> tuple[list[str], list[int], dict[str, int]]:
    """Drop repeated ``(sequence, label)`` rows and every sequence that carries two labels.

    Returns the kept sequences and labels (first occurrences, in order) and the counts
    ``{"duplicates": …, "conflicting": …}`` of rows removed (for the target's ``info``).
    """
    seen: dict[str, set[int]] = {}
    for s, y in zip(sequences, labels, strict=True):
        seen.setdefault(s, set()).add(int(y))
    conflicting = {s for s, ys in seen.items() if len(ys) > 1}
    kept_s: list[str] = []
    kept_y: list[int] = []
    done: set[str] = set()
    for s, y in zip(sequences, labels, strict=True):
        if s in conflicting or s in done:
            continue
        done.add(s)
        kept_s.append(s)
        kept_y.append(int(y))
    removed_conflicting = sum(1 for s in sequences if s in conflicting)
    return (
        kept_s,
        kept_y,
        {
            "duplicates": len(sequences) - len(kept_s) - removed_conflicting,
            "conflicting": len(conflicting),
        },
    )


def sequence_target(
    name: str,
    sequences: Sequence[str],
    labels: Sequence[int],
    class_names: list[str],
    vocabulary: list[str],
    test_index: torch.Tensor,
    info: dict[str, str],
) -> TargetData:
    """A :class:`TargetData` of token ids from strings: rows ``test_index`` form the test
    split, the rest the training split; both padded to the longest row of the whole set."""
    x = encode(sequences, vocabulary, name)
    y = torch.as_tensor(list(labels), dtype=torch.long)
    is_test = torch.zeros(len(y), dtype=torch.bool)
    is_test[test_index] = True
    train, test = torch.nonzero(~is_test).flatten(), torch.nonzero(is_test).flatten()
    return TargetData(
        name=name,
        train=Split(x[train], y[train]),
        test=Split(x[test], y[test]),
        class_names=class_names,
        modality="sequence",
        info=info,
        vocabulary=list(vocabulary),
    )
