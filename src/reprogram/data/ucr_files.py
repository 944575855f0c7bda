"""Your own series in the UCR archive's file layout: ``ucr:PATH``.

``PATH`` is a folder holding one ``<Name>_TRAIN`` and one ``<Name>_TEST`` file (or the path of
the ``_TRAIN`` file itself), in any of the formats the archive and aeon use:

- ``.tsv`` / ``.csv`` / ``.txt``: one series per line, the label first, then the values,
  separated by tabs, commas or spaces (the first line decides). Labels may be numbers or
  words. Shorter series may end early or be padded with ``NaN`` (or empty fields); they are
  padded at the end with NaN to the longest series.
- ``.ts``: aeon's and sktime's text format (univariate only), read with aeon's
  ``load_from_ts_file``.

The files are your official train/test split: validation is carved from train as for every
target, and the test file is scored once.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import DataError

#: File endings read here: the delimited text formats, then aeon's ``.ts``.
TEXT_SUFFIXES = (".tsv", ".csv", ".txt")
SUFFIXES = (*TEXT_SUFFIXES, ".ts")


def looks_like_path(rest: str) -> bool:
    """Whether ``ucr:REST`` names files rather than an archive set: a path separator, a known
    ending, or ``~``/``.`` at the start (a bare word is always an archive name, so write
    ``ucr:./MyData`` for a folder in the working directory)."""
    rest = rest.strip()
    separator = "/" in rest or "\\" in rest
    return separator or rest.startswith(("~", ".")) or rest.lower().endswith(SUFFIXES)


def find_pair(rest: str) -> tuple[str, Path, Path]:
    """``(name, train file, test file)`` for ``ucr:PATH``; DataError naming what is missing."""
    path = Path(rest.strip()).expanduser()
    if path.is_dir():
        trains = sorted(p for p in path.iterdir() if _is_split(p, "_TRAIN"))
        if len(trains) != 1:
            found = ", ".join(p.name for p in trains) or "none"
            raise DataError(
                f"ucr:{rest}: expected exactly one <Name>_TRAIN file ({'/'.join(SUFFIXES)}) in "
                f"{path}, found {found}. Point at the _TRAIN file itself to choose one."
            )
        train = trains[0]
    elif path.is_file():
        if not _is_split(path, "_TRAIN"):
            raise DataError(
                f"ucr:{rest}: {path.name} is not a <Name>_TRAIN file with one of the endings "
                f"{', '.join(SUFFIXES)}; name its _TRAIN file or the folder holding both files."
            )
        train = path
    else:
        raise DataError(f"ucr:{rest}: no such file or folder ({path.resolve()}).")
    name = train.stem[: -len("_TRAIN")]
    test = train.with_name(f"{name}_TEST{train.suffix}")
    if not test.is_file():
        raise DataError(
            f"ucr:{rest}: found {train.name} but not {test.name} beside it; the test split "
            f"must be its own file (the archive's layout)."
        )
    return name, train, test


def pad_rows(rows: list[np.ndarray]) -> np.ndarray:
    """Series of possibly different lengths → ``[N, L_max]`` padded at the end with NaN."""
    length = max(len(r) for r in rows)
    out = np.full((len(rows), length), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _is_split(path: Path, split: str) -> bool:
    return path.is_file() and path.suffix.lower() in SUFFIXES and path.stem.endswith(split)


def read_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Series ``[N, L]`` (float64, NaN-padded at the end) and labels ``[N]`` of one file."""
    if path.suffix.lower() == ".ts":
        return _read_ts(path)
    return _read_text(path)


def _read_text(path: Path, labelled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Series ``[N, L]`` and labels ``[N]`` (empty when ``labelled`` is False: every field of
    a line is then a value) of one delimited text file."""
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} ({exc}).") from None
    if not lines:
        raise DataError(f"{path} holds no series.")
    sep = "\t" if "\t" in lines[0] else "," if "," in lines[0] else None
    first = 1 if labelled else 0
    labels: list[object] = []
    rows: list[np.ndarray] = []
    for number, line in enumerate(lines, start=1):
        fields = [f.strip() for f in line.split(sep)]
        if len(fields) < first + 1:
            raise DataError(
                f"{path}, line {number}: expected a label then the series' values, got "
                f"{line[:60]!r}."
            )
        try:
            values = [math.nan if f in ("", "?") else float(f) for f in fields[first:]]
        except ValueError:
            layout = (
                "each line is the label, then the values"
                if labelled
                else "each line is the values only (add --labelled when a label comes first)"
            )
            raise DataError(
                f"{path}, line {number}: a value is not a number ({line[:60]!r}); {layout}. "
                f"A header line is not expected."
            ) from None
        if labelled:
            labels.append(_label(fields[0]))
        rows.append(np.asarray(values, dtype=np.float64))
    return pad_rows(rows), np.asarray(labels, dtype=object)


def read_series_file(path: Path, labelled: bool) -> tuple[np.ndarray, list[str]]:
    """New series for ``predict`` from a text or ``.ts`` file: ``[N, L]`` and each line's
    label as the archive spells it (``"1"``, ``"walk"``; empty without labels)."""
    if path.suffix.lower() == ".ts":
        x, y = _read_ts(path)
    else:
        x, y = _read_text(path, labelled)
    return x, [spell(v) for v in y]


def spell(value: object) -> str:
    """A label as a class name: ``1.0`` → ``"1"``, ``-1.0`` → ``"-1"``, ``"a"`` → ``"a"``."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _label(text: str) -> object:
    """``"1"`` → 1.0 (numbers sort numerically, as the archive's), ``"walk"`` stays text."""
    try:
        return float(text)
    except ValueError:
        return text


def _read_ts(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        from aeon.datasets import load_from_ts_file
    except ImportError:
        raise DataError(
            f"reading {path.name} (.ts) needs aeon (the `series` extra); or save the series "
            f"as .tsv (label, then values)."
        ) from None
    try:
        x, y = load_from_ts_file(str(path))
    except Exception as exc:  # noqa: BLE001 (aeon raises IOError, ValueError and its own)
        raise DataError(f"cannot read {path} as a .ts file ({exc}).") from None
    return univariate_rows(x, str(path)), np.asarray([_label(str(v)) for v in y], dtype=object)


def univariate_rows(x: object, where: str) -> np.ndarray:
    """aeon's series (an array ``[N, 1, L]``, or for unequal lengths a list of ``[1, L_i]``)
    as ``[N, L_max]`` float64, NaN-padded at the end; DataError if multivariate."""
    series = list(x)  # type: ignore[call-overload]
    if any(np.asarray(s).shape[0] != 1 for s in series):
        raise DataError(f"{where} is multivariate; reprogram reads univariate series.")
    return pad_rows([np.asarray(s, dtype=np.float64)[0] for s in series])


def load_local(rest: str) -> tuple[str, str, tuple[np.ndarray, ...]]:
    """``(name, where it came from, (x_train, y_train, x_test, y_test))`` for ``ucr:PATH``."""
    name, train, test = find_pair(rest)
    x_train, y_train = read_split(train)
    x_test, y_test = read_split(test)
    return name, f"local files ({train.parent.resolve()})", (x_train, y_train, x_test, y_test)


__all__ = [
    "SUFFIXES",
    "find_pair",
    "load_local",
    "looks_like_path",
    "pad_rows",
    "read_series_file",
    "read_split",
    "spell",
    "univariate_rows",
]
