"""Reading new inputs for ``reprogram predict``: image files, ``.npy`` or ``.npz`` arrays, and
for time-series models also text files of series (``.csv``/``.tsv``/``.txt``) and ``.ts``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.npyio import NpzFile
from PIL import Image
from torch import nn

from .data.checks import check_finite, check_numpy_magic, to_nchw_float
from .data.folder import EXTENSIONS as IMAGE_SUFFIXES
from .data.folder import decode_image
from .data.forecast import future_dates, read_table
from .data.molecules import check_smiles
from .data.npz import READ_ERRORS, check_array_sizes
from .data.sequence_csv import class_label, csv_rows
from .data.sequences import alphabet_of, sequence_batch
from .data.series import series_batch
from .data.ucr_files import SUFFIXES, read_series_file
from .errors import DataError


def _fit_shape(x: torch.Tensor, shape: tuple[int, ...], where: str) -> torch.Tensor:
    """Convert ``[N, C, H, W]`` to the target's ``(C_t, H_t, W_t)`` (channels, then size)."""
    c_t, h_t, w_t = shape
    if x.shape[1] != c_t:
        if c_t == 1 and x.shape[1] == 3:
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif c_t == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        else:
            raise DataError(f"{where} has {x.shape[1]} channels; the model takes {c_t}.")
    if tuple(x.shape[-2:]) != (h_t, w_t):
        x = F.interpolate(x, size=(h_t, w_t), mode="bilinear", align_corners=False, antialias=True)
    return x


def _read_image(path: Path) -> np.ndarray:
    def convert(im: Image.Image) -> np.ndarray:
        im = im.convert("RGB") if im.mode not in ("L", "1") else im.convert("L")
        return np.asarray(im)[None]

    return decode_image(path, convert)


def _read_array(path: Path) -> np.ndarray:
    """The array of a ``.npy`` file, or of a ``.npz`` file's ``x``/``x_test``/``inputs``."""
    check_numpy_magic(
        path,
        empty=f"array file {path} is empty (0 bytes); save it with numpy.save.",
        wrong=f"{path} is not a .npy or .npz file (it does not start as numpy or a zip archive "
        "writes); save arrays with numpy.save or numpy.savez.",
    )
    try:
        check_array_sizes(path)
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, NpzFile):
            return _plain(loaded, path, None)
        with loaded:
            key = next((k for k in ("x", "x_test", "inputs") if k in loaded.files), None)
            if key is None:
                raise DataError(
                    f"{path} has no array named x, x_test or inputs (found {loaded.files})."
                )
            return _plain(loaded[key], path, key)
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(
                f"{path} holds Python objects, which are never unpickled; save a plain "
                "numeric array (uint8 pixels, or floats)."
            ) from None
        raise DataError(f"cannot read array file {path} ({exc}); it is corrupt.") from None
    except READ_ERRORS as exc:
        raise DataError(
            f"cannot read array file {path} ({exc or type(exc).__name__}); it is truncated "
            "or corrupt. Save it again with numpy.save or numpy.savez."
        ) from None


def _plain(arr: np.ndarray, path: Path, key: str | None) -> np.ndarray:
    """``arr`` if it holds numbers; DataError naming the file (and array) otherwise."""
    if arr.dtype.kind not in "biuf":
        what = f"array {key!r} of {path}" if key else str(path)
        raise DataError(
            f"{what} has dtype {arr.dtype}, not numbers; save uint8 pixels (0-255), floats "
            "in [0, 1], or float series."
        )
    return arr


def load_inputs(
    paths: list[str],
    shape: tuple[int, ...],
    labelled: bool = False,
    vocabulary: list[str] | None = None,
) -> tuple[list[str], torch.Tensor, list[str]]:
    """Read inputs: a name per example, ``[N, C_t, H_t, W_t]`` floats in ``[0, 1]``, and the
    labels the files carried (series text files read with ``labelled``; else empty).

    Image files (a folder stands for the image files under it) are converted to the target's
    channels and resized to its size; array files
    hold one image ``[H, W]`` / ``[C, H, W]`` or a batch ``[N, …]`` (uint8, or floats in [0, 1]).
    For a time-series model (``shape`` ``(1, L)``) they hold one series ``[L]`` or a batch
    ``[N, L]`` / ``[N, 1, L]``, or are text files with a series a line (``.csv``/``.tsv``/
    ``.txt``; the label first when ``labelled``) or ``.ts``; the result is ``[N, 1, L]``
    (shorter series NaN-padded). For a sequence model (``shape`` ``(L,)``, with the target's
    ``vocabulary``) they are text files read by :func:`read_sequences`; the result is token
    ids ``[N, L]``.
    """
    if len(shape) == 1:  # a sequence model: token ids [L]
        if vocabulary is None:
            raise DataError("this model's config.json lacks the target's vocabulary.")
        return _load_sequences(paths, vocabulary, shape[0], labelled)
    if len(shape) == 2:  # a time-series model: inputs [1, L]
        return _load_series(paths, shape[1], labelled)
    if labelled:
        raise DataError("--labelled is for series text files; this model takes images.")
    labels: list[str] = []
    tensors: list[torch.Tensor] = []
    for name in _expand_folders(paths):
        path = Path(name)
        if not path.is_file():
            raise DataError(f"input {name} does not exist or is not a file.")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            arr = _read_image(path)
            check_finite(arr, str(path))
            x = to_nchw_float(arr, str(path))
            names = [name]
        elif path.suffix.lower() in (".npy", ".npz"):
            arr = _read_array(path)
            check_finite(arr, str(path))
            if arr.ndim == 2 or tuple(arr.shape) == tuple(shape):
                arr = arr[None]  # one image [H, W] or [C, H, W]
            x = to_nchw_float(arr, str(path))
            names = [f"{name}[{i}]" for i in range(len(x))]
        else:
            raise DataError(
                f"cannot tell what {name} is: give image files "
                f"({', '.join(sorted(IMAGE_SUFFIXES))}) "
                f"or .npy/.npz arrays."
            )
        tensors.append(_fit_shape(x, shape, name))
        labels += names
    return labels, torch.cat(tensors) if tensors else torch.empty(0, *shape), []


def _expand_folders(paths: list[str]) -> list[str]:
    """``paths`` with each folder replaced by the image files under it (sorted, hidden ones
    left out); DataError for a folder that holds none."""
    out: list[str] = []
    for name in paths:
        folder = Path(name)
        if not folder.is_dir():
            out.append(name)
            continue
        found = sorted(
            str(p) for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        if not found:
            raise DataError(
                f"folder {name} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})."
            )
        out += found
    return out


def _load_series(
    paths: list[str], length: int, labelled: bool
) -> tuple[list[str], torch.Tensor, list[str]]:
    """Series inputs of a model trained on length ``length``: arrays or text/.ts files."""
    arrays: list[tuple[str, object]] = []
    truth: list[str] = []
    for name in paths:
        path = Path(name)
        suffix = path.suffix.lower()
        if not path.is_file() or suffix not in (".npy", ".npz", *SUFFIXES):
            raise DataError(
                f"input {name} is not a file of series: give .npy/.npz arrays [N, L], or text "
                f"files with a series a line ({', '.join(SUFFIXES)})."
            )
        if suffix in (".npy", ".npz"):
            if labelled:
                raise DataError(f"--labelled reads labels from text files; {name} is an array.")
            arrays.append((name, _read_array(path)))
            continue
        x, labels = read_series_file(path, labelled=labelled or suffix == ".ts")
        longest = int((~np.isnan(x)).sum(1).max())
        if not labelled and suffix != ".ts" and longest == length + 1:
            raise DataError(
                f"{name}: lines of {longest} numbers, one more than the {length} points this "
                f"model was trained on; if each line starts with a label, add --labelled."
            )
        arrays.append((name, x))
        truth += labels if labelled else []
    names, batch = series_batch(arrays, length)
    return names, batch, truth


SEQUENCE_SUFFIXES = (".csv", ".tsv", ".txt", ".fasta", ".fa", ".faa", ".smi")
#: Tables with a header row (``fit``'s ``csv:`` reads either, tabs or commas).
TABLE_SUFFIXES = (".csv", ".tsv")


def read_sequences(path: Path, labelled: bool) -> tuple[list[str], list[str], list[str]]:
    """``(names, sequences, labels)`` of a file of sequences (UTF-8; a leading BOM dropped).

    ``.csv``/``.tsv``: a header row naming a ``sequence`` column (and ``label``, read with
    ``labelled``), fields separated by commas, semicolons or tabs as ``fit`` reads them;
    FASTA (``.fasta``/``.fa``/``.faa``: a ``>name`` line, then the sequence over one or more
    lines); anything else one sequence a line (``.smi``: the first word of the line).
    A row is named ``FILE row N`` (counted from 1, as errors count rows; a table's header
    and blank lines not counted), a FASTA record by its ``>`` line (``FILE record N`` where
    that is empty).
    """
    try:
        text = path.read_text(encoding="utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} could not be read as UTF-8 (byte {exc.start}: {exc.reason}); save it as "
            "UTF-8 text."
        ) from None
    suffix = path.suffix.lower()
    names: list[str] = []
    sequences: list[str] = []
    labels: list[str] = []
    if labelled and suffix not in TABLE_SUFFIXES:
        raise DataError(
            f"{path}: --labelled reads a label column of a .csv or .tsv file (columns "
            "sequence,label)."
        )
    if suffix in (".fasta", ".fa", ".faa"):
        for line in text.splitlines():
            if line.startswith(">"):
                names.append(line[1:].strip() or f"{path.name} record {len(names) + 1}")
                sequences.append("")
            elif line.strip():
                if not sequences:
                    raise DataError(f"{path}: a FASTA file starts with a '>name' line.")
                sequences[-1] += line.strip()
    elif suffix in TABLE_SUFFIXES:
        header, rows = csv_rows(text.splitlines(keepends=True), str(path))
        if "sequence" not in header:
            raise DataError(
                f"{path}: a {suffix} needs a header row naming a 'sequence' column (its first "
                f"line: {', '.join(map(repr, header)) or 'empty'}); add that header, or save "
                "the sequences one a line as .txt."
            )
        if labelled and "label" not in header:
            raise DataError(f"{path}: --labelled needs a label column beside sequence.")
        sequences = [(r.get("sequence") or "").strip() for r in rows]
        # as fit names classes: 1, +1 and 1.0 are class 1
        labels = [class_label((r.get("label") or "").strip()) for r in rows] if labelled else []
        empty = next((i for i, label in enumerate(labels, start=1) if not label), None)
        if empty is not None:
            raise DataError(
                f"{path}, row {empty}: the label is empty; fill it, remove that row, or leave "
                "out --labelled."
            )
        names = _row_names(path, len(rows))
    else:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        sequences = [ln.split()[0] if suffix == ".smi" else ln for ln in lines]
        names = _row_names(path, len(sequences))
    return names, sequences, labels


def _row_names(path: Path, n: int) -> list[str]:
    """``file row 1`` … ``file row n``: rows counted from 1 (a table's header not counted),
    as the errors about a row count them."""
    return [f"{path.name} row {i}" for i in range(1, n + 1)]


def _as_model_reads(texts: list[str], vocabulary: list[str], where: str) -> list[str]:
    """``texts`` as a model over ``vocabulary`` reads them: a molecule model's checked with
    RDKit (the row named), a protein model's upper-cased (FASTA's masked residues)."""
    kind = alphabet_of(vocabulary)
    if kind == "smiles":
        check_smiles(texts, where)
    elif kind == "protein":
        return [t.upper() for t in texts]
    return texts


def encode_sequences(model: Any, texts: Sequence[str]) -> torch.Tensor:
    """Token ids ``[N, L]`` (int64, ``0`` padding) of ``texts`` for a sequence model, as
    ``reprogram predict`` reads them: ``model.predict(encode_sequences(model, texts))``.

    ``model`` is a fitted or loaded model (``fit(...).model``, ``load_artifact``,
    ``from_pretrained``), whose settings record the target's vocabulary and training length
    ``L`` (longer sequences are kept, with a note; see :func:`sequence_batch`). A protein
    model upper-cases; a molecule model checks each string with RDKit.

    Raises:
        DataError: the model reads no sequences, or a string holds a symbol outside the
            vocabulary (named with its row).
    """
    if isinstance(texts, str):
        raise DataError("encode_sequences takes a list of sequences; got one string: wrap it "
                        "in a list.")
    target = getattr(model, "spec", {}).get("target", {})
    vocabulary = target.get("vocabulary")
    if not vocabulary:
        raise DataError(
            "this model's settings record no sequence vocabulary: it was not trained on a "
            "sequence target (or was built by hand, before fit); encode with "
            "reprogram.data.sequences.encode(texts, vocabulary, name) instead."
        )
    where = "the sequences"
    return sequence_batch(
        _as_model_reads(list(texts), vocabulary, where),
        vocabulary,
        int(target["input_shape"][0]),
        where,
    )


def _load_sequences(
    paths: list[str], vocabulary: list[str], length: int, labelled: bool
) -> tuple[list[str], torch.Tensor, list[str]]:
    """Sequences for a model trained on ``length`` symbols of ``vocabulary``: ids ``[N, L]``.

    A molecule model's inputs are checked with RDKit (the file's row named); a protein
    model's are upper-cased first (FASTA writes masked residues in lower case)."""
    names: list[str] = []
    texts: list[str] = []
    truth: list[str] = []
    for name in paths:
        path = Path(name)
        if not path.exists():
            raise DataError(f"input {name} does not exist.")
        if not path.is_file() or path.suffix.lower() not in SEQUENCE_SUFFIXES:
            raise DataError(
                f"input {name} is not a file of sequences: give {', '.join(SEQUENCE_SUFFIXES)} "
                "(a sequence a line, FASTA, or a CSV with a sequence column)."
            )
        n, seqs, labels = read_sequences(path, labelled)
        seqs = _as_model_reads(seqs, vocabulary, str(path))
        names += n
        texts += seqs
        truth += labels
    if not texts:
        return names, torch.empty(0, length, dtype=torch.long), truth
    return names, sequence_batch(texts, vocabulary, length, ", ".join(paths)), truth


# --------------------------------------------------------------------------- forecasts
def forecast_inputs(
    path: str, facts: dict[str, Any], labelled: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, list[str] | None]:
    """A forecasting model's input from a table with the training columns (and a time
    column): the last ``lookback`` rows, z-normalised with the training mean and std, as
    ``[C, 1, L]``; with ``labelled`` the last ``horizon`` rows are the truth ``[C, H]`` (raw
    scale) and the history ends before them. Also returns that history on the raw scale,
    ``[C, L]`` float64 (for plots), and the ``H`` forecast timestamps (the truth rows' own
    with ``labelled``; else continued from evenly spaced history, None when it is not).

    The time column is the one the model was trained with when the file has it, else the
    first of ``date``, ``ds``, ``datetime``, ``timestamp``, ``time``.

    Raises:
        DataError: a column the model was trained on is missing, or too few rows.
    """
    where = Path(path).expanduser()
    columns = [str(c) for c in facts["columns"]]
    table = read_table(
        where, str(facts.get("date_column", "")), columns, "this model forecasts",
        date_required=False,  # another time column name than in training is read too
    )
    lookback, horizon = int(facts["lookback"]), int(facts["horizon"])
    values = table.values
    need = lookback + (horizon if labelled else 0)
    if values.shape[0] < need:
        what = f"lookback {lookback} + horizon {horizon} (--labelled)" if labelled else (
            f"the lookback {lookback}"
        )
        raise DataError(f"{path} has {values.shape[0]} rows; this model needs {what}.")
    end = values.shape[0] - (horizon if labelled else 0)
    history = values[end - lookback : end]
    mean = torch.tensor(facts["mean"], dtype=torch.float64)
    std = torch.tensor(facts["std"], dtype=torch.float64)
    x = ((history - mean) / std).T.unsqueeze(1).to(torch.float32)
    truth = values[end : end + horizon].T.to(torch.float32) if labelled else None
    dates = table.dates[end : end + horizon] if labelled else future_dates(
        table.dates[:end], horizon
    )
    return x, truth, history.T, dates


@torch.no_grad()
def forecast(model: nn.Module, x: torch.Tensor, facts: dict[str, Any]) -> torch.Tensor:
    """Forecasts ``[C, H]`` on the data's own scale from normalised windows ``[C, 1, L]``."""
    was = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    normal = model(x.to(device)).cpu().double()
    model.train(was)
    mean = torch.tensor(facts["mean"], dtype=torch.float64)[:, None]
    std = torch.tensor(facts["std"], dtype=torch.float64)[:, None]
    return (normal * std + mean).to(torch.float32)


def forecast_rows(
    predicted: torch.Tensor,
    truth: torch.Tensor | None,
    columns: list[str],
    dates: list[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per future step: ``step``, its ``date`` when ``dates`` are known, and each
    column's forecast (and ``COLUMN_truth``)."""
    rows = []
    for h in range(predicted.shape[1]):
        row: dict[str, Any] = {"step": h + 1}
        if dates is not None:
            row["date"] = dates[h]
        for c, name in enumerate(columns):
            row[name] = round(float(predicted[c, h]), 6)
            if truth is not None:
                row[f"{name}_truth"] = round(float(truth[c, h]), 6)
        rows.append(row)
    return rows
