"""Checks that turn user arrays into clean splits, or raise a :class:`DataError` that says why not.

Every loader funnels its arrays through :func:`make_split`: lengths agree, inputs are finite
numbers, labels are integer classes from 0, and images end up as float32 ``[N, C, H, W]`` in
``[0, 1]`` with ``C`` in ``{1, 3}`` and labels as int64 ``[N]``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .base import Split

IMAGE_LAYOUTS = "[N, H, W] (grey), [N, C, H, W] or [N, H, W, C] with C = 1 (grey) or 3 (RGB)"


def _examples(values: np.ndarray, limit: int = 3) -> str:
    """A short, readable list of some offending values."""
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:limit])
    return shown + (", …" if len(values) > limit else "")


def delimiter_of(header: str) -> str:
    """The field separator a CSV's header line uses: a comma, else a semicolon (spreadsheets
    in locales with decimal commas), else a tab; a comma when it holds none of them."""
    for sep in (",", ";", "\t"):
        if sep in header:
            return sep
    return ","


def check_numpy_magic(path: Path, empty: str, wrong: str) -> None:
    """Refuse ``path`` unless it starts as numpy's ``.npy`` or a zip (``.npz``) file does:
    ``empty`` is the message for a 0-byte file, ``wrong`` for anything else."""
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if not magic:
        raise DataError(empty)
    if not magic.startswith(b"PK") and magic != b"\x93NUMPY":
        raise DataError(wrong)


def check_lengths(x: np.ndarray, y: np.ndarray, where: str) -> None:
    """``x`` ``[N, ...]`` and ``y`` ``[N]`` must hold the same, non-zero number of examples."""
    n_x = len(x) if x.ndim else 0
    n_y = len(y) if y.ndim else 0
    if x.ndim == 0 or y.ndim == 0 or n_x != n_y:
        raise DataError(
            f"{where}: {n_x} inputs but {n_y} labels; each input needs exactly one label."
        )
    if len(y) == 0:
        raise DataError(f"{where}: the split is empty; it needs at least one example.")


def check_finite(x: np.ndarray, where: str) -> None:
    """``x`` must be numeric without NaN or infinite values."""
    if x.dtype.kind not in "biuf":
        raise DataError(
            f"{where}: inputs have dtype {x.dtype}, not numbers; save images as uint8 (0-255) "
            "or as floats in [0, 1]."
        )
    if x.dtype.kind != "f":
        return
    n_nan = int(np.isnan(x).sum())
    n_inf = int(np.isinf(x).sum())
    if n_nan or n_inf:
        raise DataError(
            f"{where}: inputs contain {n_nan} NaN and {n_inf} infinite values (of {x.size}); "
            "remove or fix those examples first."
        )


def check_labels(y: np.ndarray, where: str) -> np.ndarray:
    """Labels ``[N]`` (or ``[N, 1]``) as int64 ``[N]``; they must be integer classes from 0."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"{where}: labels have shape {list(y.shape)}; they must be one integer class per "
            "example, shape [N] (not one-hot)."
        )
    need = "labels must be integer classes from 0 (0, 1, …, K-1)"
    if y.dtype.kind == "f":
        bad = y[~np.isfinite(y) | (np.mod(y, 1) != 0)] if y.size else y
        if bad.size:
            raise DataError(
                f"{where}: {bad.size} labels are not whole numbers ({_examples(bad)}); {need}."
            )
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iu":
        raise DataError(
            f"{where}: labels have dtype {y.dtype} ({_examples(y)}); {need}. Map names to "
            "numbers first and pass the names as class_names."
        )
    y = y.astype(np.int64)
    negative = y[y < 0]
    if negative.size:
        raise DataError(
            f"{where}: {negative.size} labels are negative ({_examples(negative)}); {need}."
        )
    return y


def validate_split(x: np.ndarray, y: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Check one split; return ``x`` unchanged and the labels as int64 ``[N]``.

    Args:
        x: inputs ``[N, ...]``.
        y: labels ``[N]``.
        where: what to call the split in messages (``"data.npz, train split"``).
    """
    x, y = np.asarray(x), np.asarray(y)
    check_lengths(x, y, where)
    check_finite(x, where)
    return x, check_labels(y, where)


def _as_unit_float(x: np.ndarray, where: str) -> np.ndarray:
    """uint8 ``0..255`` → float32 ``/ 255``, uint16 (16-bit images, as folder images read)
    ``/ 65535``, other integers ``/ 255`` when they lie in ``0..255``; floats must already lie
    in ``[0, 1]``."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype == np.uint16:
        return x.astype(np.float32) / np.float32(65535.0)
    if x.dtype.kind in "iu" and x.size and 0 <= int(x.min()) and int(x.max()) <= 255:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype.kind != "f":
        shown = f" from {int(x.min())} to {int(x.max())}" if x.dtype.kind in "iu" and x.size else ""
        raise DataError(
            f"{where}: images have dtype {x.dtype}{shown}; save them as uint8 (0-255), uint16 "
            "(0-65535) or as floats scaled to [0, 1]."
        )
    check_finite(x, where)
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise DataError(
            f"{where}: float images have values from {lo:g} to {hi:g}; scale them to [0, 1] "
            "(e.g. divide 0-255 pixels by 255) or save them as uint8."
        )
    return x.astype(np.float32, copy=False)


def _to_nchw(x: np.ndarray, where: str) -> np.ndarray:
    """Reorder any accepted image layout to ``[N, C, H, W]``."""
    if x.ndim == 2:
        raise DataError(
            f"{where}: inputs have shape {list(x.shape)} ([N, L]), which is a time series; image "
            f"programs need images ({IMAGE_LAYOUTS}). Time series support comes with the "
            "`waveform` program."
        )
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    if x.ndim == 4 and x.shape[3] in (1, 3):
        return x.transpose(0, 3, 1, 2)
    raise DataError(f"{where}: inputs have shape {list(x.shape)}; images must be {IMAGE_LAYOUTS}.")


def to_nchw_float(x: np.ndarray, where: str) -> torch.Tensor:
    """Images in any accepted layout and dtype → float32 tensor ``[N, C, H, W]`` in ``[0, 1]``.

    Accepts ``[N, H, W]`` (→ ``C = 1``), ``[N, C, H, W]`` or ``[N, H, W, C]`` with ``C`` in
    ``{1, 3}`` (channels-first wins when both fit), as uint8 or float in ``[0, 1]``.
    """
    x = np.asarray(x)
    nchw = _to_nchw(x, where)
    if 0 in nchw.shape[2:]:
        raise DataError(f"{where}: images have shape {list(x.shape)}, with a zero-sized side.")
    return torch.from_numpy(np.ascontiguousarray(_as_unit_float(nchw, where)))


def make_split(x: np.ndarray, y: np.ndarray, where: str) -> Split:
    """Validate ``x`` ``[N, ...]`` / ``y`` ``[N]`` and return a :class:`Split`.

    The split holds ``x`` float32 ``[N, C, H, W]`` in ``[0, 1]`` and ``y`` int64 ``[N]``.
    """
    x, y = validate_split(x, y, where)
    return Split(to_nchw_float(x, where), torch.from_numpy(y))


def check_label_sets(
    train_y: np.ndarray | torch.Tensor, other_y: np.ndarray | torch.Tensor, where: str
) -> None:
    """Every class in ``other_y`` (test or validation labels ``[M]``) must occur in ``train_y``."""
    missing = sorted(set(np.asarray(other_y).tolist()) - set(np.asarray(train_y).tolist()))
    if missing:
        raise DataError(
            f"{where}: classes {_examples(np.array(missing), 5)} appear there but never in the "
            "training split, so nothing could learn them; add training examples of those "
            "classes or drop them."
        )


def check_class_names(names: Sequence[str], labels: Sequence[np.ndarray], where: str) -> None:
    """``names`` must be unique and name every label in ``labels`` (``0 … len(names)-1``)."""
    top = max(int(y.max()) for y in labels if len(y))
    if top >= len(names):
        raise DataError(
            f"{where}: {len(names)} class names given but labels go up to {top}; give one name "
            f"per class 0 … {top}."
        )
    if len(set(names)) != len(names):
        raise DataError(f"{where}: class names repeat; each class needs its own name.")


def check_dense_labels(labels: Sequence[np.ndarray | torch.Tensor], where: str) -> int:
    """The number of classes ``K`` of labels that must be exactly ``0 … K-1``, each occurring.

    Labels name classes by position, so a label of 1e9 would mean a billion classes (and
    a billion-row mapping): the largest label may be at most the number of distinct labels
    minus one. Checked from the distinct values alone, before anything is sized by a label.
    """
    present = np.unique(np.concatenate([np.asarray(y).reshape(-1) for y in labels]))
    if not present.size:
        raise DataError(f"{where}: there are no labels.")
    top = int(present[-1])
    if top >= present.size:
        missing = np.setdiff1d(np.arange(min(top, present.size + 3)), present)
        raise DataError(
            f"{where}: labels go up to {top} but only {present.size} distinct classes occur "
            f"({_examples(present, 5)}; classes {_examples(missing, 3)} never do). Labels must "
            f"be the classes 0 … K-1, each used: renumber them (np.unique(y, "
            "return_inverse=True) gives such labels), or save class_names naming every class."
        )
    return top + 1


def default_class_names(labels: Sequence[np.ndarray | torch.Tensor], where: str = "") -> list[str]:
    """``["0", …, "K-1"]`` for labels that are exactly the classes ``0 … K-1`` (checked by
    :func:`check_dense_labels`, which raises a DataError otherwise)."""
    k = check_dense_labels([y for y in labels if len(y)], where or "the target")
    return [str(c) for c in range(k)]


# --------------------------------------------------------------------------- time series
SERIES_LAYOUTS = "[N, L] or [N, 1, L] (one channel of length L)"


def looks_like_series(x: np.ndarray) -> bool:
    """True for ``[N, L]`` and ``[N, 1, L]`` arrays (an image of height 1 is a series)."""
    return x.ndim == 2 or (x.ndim == 3 and x.shape[1] == 1)


def check_series(x: np.ndarray, where: str) -> None:
    """Series ``[N, 1, L]`` must be numbers; NaN is allowed only as padding at the end.

    Unequal-length series are padded at the end with NaN; a NaN followed by a number, a series
    with no value at all, or an infinite value is refused.
    """
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: series have dtype {x.dtype}, not numbers.")
    if x.shape[-1] == 0:
        raise DataError(f"{where}: series have length 0.")
    if x.dtype.kind != "f":
        return
    flat = x.reshape(len(x), -1)
    nan = np.isnan(flat)
    n_inf = int(np.isinf(flat).sum())
    # a NaN is padding only if everything after it is NaN too
    inner = nan & ~np.flip(np.logical_and.accumulate(np.flip(nan, 1), 1), 1)
    empty = nan.all(1)
    if n_inf or inner.any():
        rows = np.flatnonzero(inner.any(1) | np.isinf(flat).any(1))
        raise DataError(
            f"{where}: inputs contain {int(inner.sum())} NaN inside series and {n_inf} infinite "
            f"values (series {_examples(rows)}); NaN may only pad shorter series at the end. "
            "Fill missing values (e.g. by linear interpolation) or remove those series first."
        )
    if empty.any():
        rows = np.flatnonzero(empty)
        raise DataError(
            f"{where}: {rows.size} series are all NaN (series {_examples(rows)}); each series "
            "needs at least one value."
        )


def to_series_float(x: np.ndarray, where: str) -> torch.Tensor:
    """Series ``[N, L]`` or ``[N, 1, L]`` → float32 tensor ``[N, 1, L]`` (trailing NaN kept)."""
    x = np.asarray(x)
    if not looks_like_series(x):
        raise DataError(
            f"{where}: inputs have shape {list(x.shape)}; time series must be {SERIES_LAYOUTS}."
        )
    check_series(x, where)
    x = x.reshape(len(x), 1, x.shape[-1]).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(x))


def make_series_split(x: np.ndarray, y: np.ndarray, where: str) -> Split:
    """Validate series ``x`` ``[N, L]``/``[N, 1, L]`` and labels ``y`` ``[N]`` into a Split.

    The split holds ``x`` float32 ``[N, 1, L]`` (trailing NaN pads shorter series) and ``y``
    int64 ``[N]``.
    """
    x, y = np.asarray(x), np.asarray(y)
    check_lengths(x, y, where)
    return Split(to_series_float(x, where), torch.from_numpy(check_labels(y, where)))


# --------------------------------------------------------------------------- input bounds
#: Largest image decoded, width × height in pixels (e.g. 8192 × 8192, or a 64-megapixel
#: photo), checked from the file's header before any pixel is decoded: a small file can
#: claim a huge image (a decompression bomb). Pillow's own guard warns only above 89 and
#: refuses above 179 megapixels.
MAX_IMAGE_PIXELS = 2**26

#: Most values one input may hold (``C·H·W`` for an image, ``L`` for a series): 16.8 million,
#: e.g. 3 × 2364 × 2364. Shapes read from an artifact's config.json are held to it before
#: any model is built from them.
MAX_INPUT_VALUES = 2**24


def check_image_size(width: int, height: int, where: str) -> None:
    """Refuse an image larger than :data:`MAX_IMAGE_PIXELS`, from its header's size."""
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(
            f"{where}: the image is {width}x{height} ({width * height / 1e6:.0f} megapixels), "
            f"more than the {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels reprogram decodes (a file "
            "claiming a huge size can exhaust memory). Resize it first, e.g. to the size the "
            "model takes."
        )


def check_input_shape(shape: object, where: str) -> tuple[int, ...]:
    """``shape`` as a tuple of ints if it is one input's shape: ``[C, H, W]`` (an image) or
    ``[1, L]`` (a series) or ``[L]`` (a sequence of tokens), every size at least 1 and
    :data:`MAX_INPUT_VALUES` values at most; a :class:`DataError` saying what is wrong
    otherwise (callers re-raise it as their kind)."""
    if not isinstance(shape, (list, tuple)) or len(shape) not in (1, 2, 3):
        raise DataError(
            f"{where}: input_shape is {shape!r}; it must be [C, H, W] (images), [1, L] (series) "
            "or [L] (sequences)."
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in shape):
        raise DataError(f"{where}: input_shape {list(shape)} must hold whole numbers.")
    dims = tuple(int(v) for v in shape)
    if len(dims) == 2 and dims[0] != 1:
        raise DataError(f"{where}: input_shape {list(dims)} is not a series [1, L].")
    if min(dims) < 1:
        raise DataError(f"{where}: input_shape {list(dims)} has a size below 1.")
    values = int(np.prod(dims, dtype=object))
    if values > MAX_INPUT_VALUES:
        raise DataError(
            f"{where}: input_shape {list(dims)} means {values:,} values per input, more than the "
            f"{MAX_INPUT_VALUES:,} reprogram takes; resize the inputs first."
        )
    return dims


def check_writable_dir(path: str | Path, flag: str = "--out") -> None:
    """Check that ``path`` (a directory, existing or to be made) can be written, before any
    work is done: the nearest existing folder must be a folder and take a new file (a real
    trial, as pip does, since permission bits do not tell: read-only mounts, ACLs, root)."""
    path = Path(path).expanduser()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == path else f"cannot be made: {existing} is a file"
        raise DataError(f"{flag} {path} {what}; {flag} must be a folder (new or a run's).")
    try:
        fd, trial = tempfile.mkstemp(prefix=".reprogram-write-check-", dir=existing)
        os.close(fd)
        os.unlink(trial)
    except OSError as exc:
        where = "" if existing == path else f" (its nearest existing folder {existing})"
        raise DataError(
            f"{flag} {path} is not writable{where}: {exc.strerror or exc}. Choose a folder you "
            "can write to, or fix its permissions."
        ) from None
