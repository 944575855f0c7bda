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
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import torch

from ..errors import DataError
from . import TARGETS
from .base import Split, TargetData, portable_name
from .checks import delimiter_of
from .molecules import check_smiles
from .sequences import AMINO_ACIDS, SMILES_CHARACTERS, alphabet_for, encode
from .splits import holdout_split

TEST_FRACTION = 0.2
SPLIT_SEED = 0
SPLITS = ("train", "val", "test")
#: Other names of the splits users write (lower-case): read as the split they mean.
SPLIT_NAMES = {
    "training": "train",
    "validation": "val",
    "valid": "val",
    "dev": "val",
    "testing": "test",
}


def _float(text: str) -> float | None:
    """``text`` as a number, or None where it is none."""
    try:
        return float(text)
    except ValueError:
        return None


def _values(labels: list[str], where: str) -> torch.Tensor:
    """Regression labels as float32 ``[N]``; the first that is not a finite number refused."""
    values = []
    for row, text in enumerate(labels, start=1):
        value = _float(text)
        if value is None or not math.isfinite(value):
            comma = (" (a decimal comma? write it with a point: "
                     f"{text.replace(',', '.')})" if re.fullmatch(r"[-+]?\d+,\d+", text) else "")
            raise DataError(
                f"{where}, row {row}: label {text!r} is not a finite number{comma}; a "
                "regression target (#task=regression) needs a number in every row."
            )
        values.append(value)
    return torch.tensor(values, dtype=torch.float32)


def whole_number(text: str) -> int | None:
    """The whole number a label writes (``1``, ``+1``, ``1.0``, ``12345678901234567890``
    exactly), or None: the form in which ``1`` and ``1.0`` are one class, at ``fit`` and
    when ``predict --labelled`` compares."""
    try:
        return int(text)
    except ValueError:
        pass
    value = _float(text)
    return int(value) if value is not None and value.is_integer() else None


def class_label(text: str) -> str:
    """A label as the class it names: a whole number written canonically (``+1``, ``1.0``
    → ``1``), any other text unchanged."""
    number = whole_number(text)
    return text if number is None else str(number)


def _class_names(
    labels: list[str], where: str, explicit: bool = False
) -> tuple[list[str], list[str]]:
    """Sorted distinct labels (numerically when all are whole numbers, ``1`` and ``1.0`` one
    class) and the labels written that way. Numbers with decimals are refused as values to
    predict, unless the file says ``#task=classification`` (``explicit``): then they are
    class names as written (``1.1``, ``2.3``: codes, not measurements)."""
    distinct = sorted(set(labels))
    numbers = [whole_number(v) for v in distinct]
    if all(n is not None for n in numbers):
        canonical = [class_label(v) for v in labels]
        return sorted(set(canonical), key=int), canonical
    decimals = [v for v, n in zip(distinct, numbers, strict=True) if n is None]
    if explicit or any(_float(v) is None for v in decimals):
        return distinct, labels
    raise DataError(
        f"{where}: the labels are numbers with decimals ({', '.join(decimals[:3])} …), "
        "values to predict rather than classes; add #task=regression to the name to predict "
        "the values, or #task=classification to keep each as a class name as written."
    )


def _values_note(class_names: list[str], y: torch.Tensor, where: str) -> None:
    """Suggest ``#task=regression`` when whole-number labels look like measurements (ten
    or more distinct values, or a value that only one row has), which a classifier would
    read as that many classes."""
    counts = torch.bincount(y, minlength=len(class_names))
    if len(class_names) >= 10 or int(counts.min()) == 1:
        _say(
            f"note: {where}: the labels are {len(class_names)} distinct whole numbers "
            f"({', '.join(class_names[:4])}{' …' if len(class_names) > 4 else ''}), each read "
            "as a class; if they are measured values, add #task=regression "
            "(csv:PATH#task=regression) to predict them as numbers."
        )


#: Label cells that mean "no label".
MISSING = ("nan", "na", "n/a", "null", "none")


#: Columns whose cells are one line each: a line break in one means a quote left open.
ONE_LINE = ("sequence", "label", "split")


def csv_rows(
    lines: Iterable[str], where: str = "the file"
) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of CSV ``lines``, the column names stripped and lower-cased (so
    ``Sequence , Label`` reads as ``sequence,label``) and a leading BOM dropped; missing
    cells are empty strings; fields separated by commas, or by semicolons or tabs when the
    header holds no comma, or as an Excel ``sep=;`` first line says. Also how ``predict``
    reads a CSV of sequences.

    Raises:
        DataError: two columns share a name, a row has more fields than the header (a
            decimal comma in a comma-separated file, say), or a sequence, label or split
            cell runs over lines (a quote left open); ``where`` names the file.
    """
    text = [line.lstrip("\ufeff") if i == 0 else line for i, line in enumerate(lines)]
    given = text[0].strip() if text else ""
    if given.lower().startswith("sep=") and len(given) == 5:  # Excel's separator line
        delimiter, text = given[4], text[1:]
    else:
        delimiter = delimiter_of(text[0]) if text else ","
    reader = csv.DictReader(text, delimiter=delimiter, restkey="\0extra")
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise DataError(
            f"{where}: the header names {', '.join(map(repr, twice))} twice (names are read "
            "without case or spaces); give each column its own name."
        )
    rows = []
    for row, r in enumerate(reader, start=1):
        extra = r.pop("\0extra", None)
        if extra is not None:
            comma = (" A decimal comma in a comma-separated file? Write decimals with a point, "
                     "or quote the field." if delimiter == "," else "")
            raise DataError(
                f"{where}, row {row}: {len(header) + len(extra)} fields, more than the "
                f"header's {len(header)} ({', '.join(header)}).{comma}"
            )
        cells = {(k or "").strip().lower(): (v or "") for k, v in r.items()}
        broken = next((c for c in ONE_LINE if "\n" in cells.get(c, "") or "\r" in cells.get(c, "")),
                      None)
        if broken is not None:
            raise DataError(
                f"{where}, row {row}: the {broken} cell runs over several lines; a quote (\") "
                "opened there or above is not closed. Remove the stray quote, or close it."
            )
        rows.append(cells)
    return header, rows


def _read_rows(path: Path, where: str) -> list[dict[str, str]]:
    """The rows of a CSV file with at least ``sequence`` and ``label`` columns (see
    :func:`csv_rows`)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            header, rows = csv_rows(f, where)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{where} could not be read as UTF-8 CSV ({exc}).") from None
    missing = [c for c in ("sequence", "label") if c not in header]
    if missing:
        hint = ""
        if len(header) == 1 and "|" in header[0]:
            hint = " It looks separated by '|': use commas, semicolons or tabs."
        raise DataError(
            f"{where} lacks the column(s) {', '.join(missing)} (its header: "
            f"{', '.join(repr(h) for h in header) or 'none'}); give a header row "
            f"sequence,label[,split].{hint}"
        )
    if not rows:
        raise DataError(f"{where} has a header but no rows; give one sequence per row.")
    return rows


def _smiles_like(joined: str) -> bool:
    """Whether the characters ``joined`` are all SMILES symbols and include the bond, ring
    or branch marks that plain words or peptides do not use."""
    return bool(joined) and set(joined) <= set(SMILES_CHARACTERS) and bool(
        set(joined) & set("()=#[]123456789")
    )


_SAID: set[str] = set()


def _say(note: str) -> None:
    """Print ``note`` on stderr once in this process: a bench or a k-fold run reads the same
    file many times, and the same note on every read buries the progress lines."""
    if note not in _SAID:
        _SAID.add(note)
        print(note, file=sys.stderr)


def _case_note(class_names: list[str], where: str) -> None:
    """Warn (stderr) about class names that differ only in case (``AMP`` and ``amp``): read as
    two classes, which a typo in a spreadsheet usually is not."""
    groups: dict[str, list[str]] = {}
    for name in class_names:
        groups.setdefault(name.casefold(), []).append(name)
    alike = [names for names in groups.values() if len(names) > 1]
    if alike:
        shown = "; ".join(" and ".join(map(repr, names)) for names in alike[:3])
        _say(
            f"note: {where}: the labels {shown} differ only in case and are read as "
            f"different classes ({len(class_names)} in all); write them alike if they are one.",
        )


def _notes(sequences: list[str], labels: list[str], where: str, task: str) -> None:
    """Warn (stderr) about repeated sequences: a twin across the splits inflates the test
    score, and one sequence under two classes cannot be learnt (``labels`` as the classes
    they name, so ``1`` and ``1.0`` agree; a regression file's repeats are replicate
    measurements, said so)."""
    seen: dict[str, set[str]] = {}
    for seq, label in zip(sequences, labels, strict=True):
        seen.setdefault(seq, set()).add(label)
    repeated = len(sequences) - len(seen)
    if repeated:
        clash = sum(1 for v in seen.values() if len(v) > 1)
        differ = ("with different values (replicate measurements?)" if task == "regression"
                  else "under more than one label")
        _say(
            f"note: {where}: {repeated} row(s) repeat an earlier sequence"
            + (f", {clash} sequence(s) {differ}" if clash else "")
            + "; a repeat split across train and test inflates the test score (the built-in "
            "sets keep one row a sequence).",
        )


def read_sequence_csv(spec: str) -> TargetData:
    """Load ``PATH[#alphabet=KIND]``: token ids ``[N, L]``, class labels from ``label``."""
    path_text, *options = spec.split("#")
    kind = None
    task, explicit = "classification", False
    for option in options:
        key, sep, value = option.partition("=")
        if key.strip() == "alphabet" and sep:
            kind = value.strip()
        elif key.strip() == "task" and value.strip() in ("classification", "regression"):
            task, explicit = value.strip(), True
        else:
            whole = Path(spec).expanduser()
            hint = (
                f" The file {whole} exists, but '#' starts an option here: rename the file "
                "(or link it) to a path without '#'."
                if whole.is_file()
                else ""
            )
            raise DataError(
                f"csv:{spec}: options are #alphabet=protein|smiles|text and "
                f"#task=classification|regression, got {option!r}.{hint}"
            )
    path = Path(path_text.strip()).expanduser()
    where = f"csv file {path}"
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(f"{where} {what}; csv: needs a CSV file with sequence,label columns.")
    rows = _read_rows(path, where)
    columns = set(rows[0])
    sequences = [r["sequence"].strip() for r in rows]
    labels = [r["label"].strip() for r in rows]
    for row, label in enumerate(labels, start=1):
        if not label:
            raise DataError(f"{where}, row {row}: the label is empty; fill or remove that row.")
        if label.lower() in MISSING and task == "classification":
            raise DataError(
                f"{where}, row {row}: the label is {label!r}, which reads as missing "
                f"({', '.join(MISSING)} mean no label); fill or remove that row, or name that "
                "class otherwise."
            )
    joined = "".join(c for c in "".join(sequences) if not c.isspace())
    protein_like = sum(c.upper() in AMINO_ACIDS for c in joined) >= 0.9 * len(joined)
    if kind in ("protein", "smiles") or (kind is None and protein_like):
        # symbols are read one by one: whitespace is no symbol of peptides or molecules
        for row, seq in enumerate(sequences, start=1):
            gap = next((i for i, c in enumerate(seq) if c.isspace()), None)
            if gap is not None:
                text = (" If the rows are plain text (words), say so: csv:PATH#alphabet=text."
                        if kind is None else "")
                raise DataError(
                    f"{where}, row {row}: the sequence holds whitespace at position {gap + 1} "
                    f"({seq[:40]!r}); sequences are read symbol by symbol: remove it.{text}"
                )
    if kind is None:
        foreign = sorted(set("".join(sequences)) - set(AMINO_ACIDS))
        kind = "text" if foreign else "protein"
        if foreign and protein_like:  # peptides with a few odd symbols, or in lower case
            odd = [r for r, seq in enumerate(sequences, start=1) if set(seq) & set(foreign)]
            shown = foreign if len(foreign) <= 6 else [*foreign[:6], "…"]
            _say(
                f"note: {where}: {', '.join(map(repr, shown))} (row(s) "
                f"{', '.join(map(str, odd[:5]))}{' …' if len(odd) > 5 else ''}) are no amino "
                "acids, so the file is read as #alphabet=text: new sequences may use only the "
                "characters it holds. Add #alphabet=protein to have those rows refused by name.",
            )
        elif foreign and _smiles_like(joined):
            _say(
                f"note: {where}: the sequences look like SMILES, but without #alphabet=smiles "
                "they are read as text: no row is checked with RDKit. Add #alphabet=smiles "
                "(csv:PATH#alphabet=smiles) if they are molecules.",
            )
    vocabulary = alphabet_for(kind, sequences)
    x = encode(sequences, vocabulary, where)
    if kind == "smiles":
        check_smiles(sequences, where)
    if task == "regression":
        class_names, y = ["value"], _values(labels, where)
    else:
        class_names, labels = _class_names(labels, where, explicit)
        _case_note(class_names, where)
        if len(class_names) < 2:
            raise DataError(
                f"{where}: every row has label {class_names[0]!r}; two classes at least."
            )
        index = {name: i for i, name in enumerate(class_names)}
        y = torch.tensor([index[v] for v in labels], dtype=torch.long)
        if not explicit and all(whole_number(v) is not None for v in class_names):
            _values_note(class_names, y, where)
    _notes(sequences, labels, where, task)
    if "split" in columns:
        split = [(r["split"] or "").strip().lower() for r in rows]
        split = [SPLIT_NAMES.get(v, v) for v in split]
        for row, value in enumerate(split, start=1):
            if value not in SPLITS:
                raise DataError(
                    f"{where}, row {row}: split is {value!r}; use train, val or test "
                    "(training, validation, valid, dev and testing read as those)."
                )
        parts = {s: torch.tensor([i for i, v in enumerate(split) if v == s]) for s in SPLITS}
        for needed in ("train", "test"):
            if len(parts[needed]) == 0:
                raise DataError(f"{where}: no row has split={needed}; give some.")
        if task == "classification":
            untrained = set(y.tolist()) - set(y[parts["train"]].tolist())
            unseen = [class_names[c] for c in sorted(untrained)]
            if unseen:
                raise DataError(
                    f"{where}: class(es) {', '.join(map(repr, unseen))} appear in the val or "
                    "test rows but never in split=train; a model cannot learn them: move some "
                    "of their rows to train."
                )
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
    tags=("sequence",),
)
def sequence_csv(rest: str) -> TargetData:
    data = read_sequence_csv(rest)
    data.portable_name = portable_name("csv", rest)
    return data
