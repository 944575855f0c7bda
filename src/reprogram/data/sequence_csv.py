"""``csv:PATH``: a user's own sequences, one per row of a CSV file.

Columns ``sequence`` and ``label`` are required; ``split`` is optional (``train``, ``val``
or ``test`` per row; without it a fixed stratified 20% is held out as test with seed 0). The
alphabet follows the path after ``#``: ``csv:data.csv#alphabet=protein`` (the 20 amino acids),
``#alphabet=smiles`` (SMILES characters, every row checked with RDKit) or ``#alphabet=text``
(the characters the file uses). Without it, ``protein`` when every character is an amino
acid, ``text`` otherwise. Labels are class names (any text; integers sort as numbers), or
with ``#task=regression`` numbers to predict (``csv:data.csv#alphabet=smiles#task=regression``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

from ..errors import DataError
from . import TARGETS
from .base import Split, TargetData
from .molecules import check_smiles
from .sequences import AMINO_ACIDS, alphabet_for, encode
from .splits import holdout_split

TEST_FRACTION = 0.2
SPLIT_SEED = 0
SPLITS = ("train", "val", "test")


def _values(labels: list[str], where: str) -> torch.Tensor:
    """Regression labels as float32 ``[N]``; the first that is not a finite number refused."""
    values = []
    for row, text in enumerate(labels, start=1):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value):
            raise DataError(
                f"{where}, row {row}: label {text!r} is not a finite number; a regression "
                "target (#task=regression) needs a number in every row."
            )
        values.append(value)
    return torch.tensor(values, dtype=torch.float32)


def _class_names(labels: list[str], where: str) -> list[str]:
    """Sorted distinct labels (numerically when all are integers); regression values refused."""
    distinct = sorted(set(labels))
    try:
        numbers = [float(v) for v in distinct]
    except ValueError:
        return distinct
    if any(not n.is_integer() for n in numbers):
        raise DataError(
            f"{where}: the labels are numbers with decimals ({', '.join(distinct[:3])} …), "
            "values to predict rather than classes; this target needs class labels (text or "
            "whole numbers), or add #task=regression to the name to predict the values."
        )
    return sorted(distinct, key=float)


def read_sequence_csv(spec: str) -> TargetData:
    """Load ``PATH[#alphabet=KIND]``: token ids ``[N, L]``, class labels from ``label``."""
    path_text, *options = spec.split("#")
    kind = None
    task = "classification"
    for option in options:
        key, sep, value = option.partition("=")
        if key.strip() == "alphabet" and sep:
            kind = value.strip()
        elif key.strip() == "task" and value.strip() in ("classification", "regression"):
            task = value.strip()
        else:
            raise DataError(
                f"csv:{spec}: options are #alphabet=protein|smiles|text and "
                f"#task=classification|regression, got {option!r}."
            )
    path = Path(path_text.strip()).expanduser()
    where = f"csv file {path}"
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(f"{where} {what}; csv: needs a CSV file with sequence,label columns.")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{where} could not be read as UTF-8 CSV ({exc}).") from None
    columns = set(rows[0]) if rows else set()
    missing = [c for c in ("sequence", "label") if c not in columns]
    if missing:
        raise DataError(
            f"{where} lacks the column(s) {', '.join(missing)} (it has: "
            f"{', '.join(sorted(c for c in columns if c)) or 'no rows'}); give a header row "
            "sequence,label[,split]."
        )
    sequences = [(r["sequence"] or "").strip() for r in rows]
    labels = [(r["label"] or "").strip() for r in rows]
    for row, label in enumerate(labels, start=1):
        if not label:
            raise DataError(f"{where}, row {row}: the label is empty; fill or remove that row.")
    if kind is None:
        kind = "protein" if set("".join(sequences)) <= set(AMINO_ACIDS) else "text"
    vocabulary = alphabet_for(kind, sequences)
    x = encode(sequences, vocabulary, where)
    if kind == "smiles":
        check_smiles(sequences, where)
    if task == "regression":
        class_names, y = ["value"], _values(labels, where)
    else:
        class_names = _class_names(labels, where)
        if len(class_names) < 2:
            raise DataError(
                f"{where}: every row has label {class_names[0]!r}; two classes at least."
            )
        y = torch.tensor([class_names.index(v) for v in labels], dtype=torch.long)
    if "split" in columns:
        split = [(r["split"] or "").strip().lower() for r in rows]
        for row, value in enumerate(split, start=1):
            if value not in SPLITS:
                raise DataError(
                    f"{where}, row {row}: split is {value!r}; use train, val or test."
                )
        parts = {s: torch.tensor([i for i, v in enumerate(split) if v == s]) for s in SPLITS}
        for needed in ("train", "test"):
            if len(parts[needed]) == 0:
                raise DataError(f"{where}: no row has split={needed}; give some.")
        how = "the file's split column"
    else:
        if task == "regression":
            gen = torch.Generator().manual_seed(SPLIT_SEED)
            order = torch.randperm(len(y), generator=gen)
            n_test = max(1, round(TEST_FRACTION * len(y)))
            keep, held = torch.sort(order[n_test:]).values, torch.sort(order[:n_test]).values
        else:
            keep, held = holdout_split(y, TEST_FRACTION, SPLIT_SEED)
        parts = {"train": keep, "val": torch.empty(0, dtype=torch.long), "test": held}
        how = (
            f"fixed {TEST_FRACTION:.0%} test split (seed {SPLIT_SEED}"
            f"{'' if task == 'regression' else ', stratified by class'})"
        )
    val = Split(x[parts["val"]], y[parts["val"]]) if len(parts["val"]) else None
    return TargetData(
        name=f"csv:{spec}",
        train=Split(x[parts["train"]], y[parts["train"]]),
        test=Split(x[parts["test"]], y[parts["test"]]),
        class_names=class_names,
        modality="sequence",
        val=val,
        info={"source": str(path), "alphabet": kind, "split": how},
        vocabulary=vocabulary,
        task=task,
    )


@TARGETS.register(
    "csv:",
    prefix=True,
    help="PATH[#alphabet=protein|smiles|text][#task=regression] your sequences "
    "(columns sequence,label[,split])",
)
def sequence_csv(rest: str) -> TargetData:
    return read_sequence_csv(rest)
