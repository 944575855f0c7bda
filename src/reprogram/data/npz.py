"""``npz:PATH``: a target task saved with ``numpy.savez`` (never unpickled).

Arrays ``x_train, y_train, x_test, y_test``, optional ``x_val, y_val`` (together); or just
``x, y``, from which a fixed stratified 20% is held out as the test split (seed 0, independent
of the run seed), as ``folder:`` does for a folder without train/test. ``class_names``
(strings, one per class; default ``"0" … "K-1"``) is optional. Images may be ``[N, H, W]``,
``[N, C, H, W]`` or ``[N, H, W, C]`` with ``C`` in ``{1, 3}``, uint8 (or other integers in
``0..255``), uint16 (16-bit) or float in ``[0, 1]``;
labels are integer classes from 0, or strings (the class names, sorted, unless
``class_names`` gives their order). Arrays ``[N, L]`` or ``[N, 1, L]`` are time series
(``modality="series"``, float32 ``[N, 1, L]``; NaN only as padding at the end of a series).
"""

from __future__ import annotations

import os
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np
import torch
from numpy.lib import format as np_format
from numpy.lib.npyio import NpzFile

from ..errors import DataError
from . import KIND_PROBES, TARGETS
from .base import Split, TargetData, portable_name
from .checks import (
    check_class_names,
    check_label_sets,
    check_labels,
    check_lengths,
    check_numpy_magic,
    default_class_names,
    looks_like_series,
    make_series_split,
    make_split,
)
from .splits import holdout_split

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
#: One set to split here: ``x`` and ``y`` (its test split held out as ``folder:`` does).
SINGLE = ("x", "y")
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def _read(path: Path) -> dict[str, np.ndarray]:
    """All arrays of the ``.npz`` file at ``path`` by name; DataError if it cannot be read."""
    if not path.exists():
        raise DataError(f"npz file {path} does not exist.")
    if path.is_dir():
        raise DataError(f"{path} is a directory; npz: needs a .npz file (folder: reads images).")
    try:
        check_numpy_magic(
            path,
            empty=f"npz file {path} is empty (0 bytes); save it with numpy.savez.",
            wrong=f"{path} is not a .npz file (not a zip archive of arrays); save it with "
            "numpy.savez.",
        )
        check_array_sizes(path)
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, NpzFile):
            raise DataError(
                f"{path} holds a single array (.npy); save a .npz with np.savez(path, "
                f"{', '.join(f'{k}=…' for k in REQUIRED)})."
            )
        with loaded:
            return {key: _array(loaded, key, path) for key in loaded.files}
    except DataError:
        raise
    except READ_ERRORS as exc:
        raise DataError(
            f"cannot read {path} as a .npz file ({exc}); save it with numpy.savez."
        ) from None


#: What reading a damaged ``.npy``/``.npz`` can raise inside numpy and zipfile: the readers
#: turn each into a DataError naming the file.
READ_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    SyntaxError,  # a garbled .npy header is parsed as a Python literal
    tokenize.TokenError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,  # an unsupported zip compression method
    struct.error,
    KeyError,
)


#: Environment variable that overrides :func:`array_bytes_bound` (bytes).
MAX_ARRAY_BYTES_ENV = "REPROGRAM_MAX_ARRAY_BYTES"


def array_bytes_bound() -> int:
    """The most bytes the arrays of one ``.npy``/``.npz`` file may take once read: half of
    this machine's physical memory, or ``$REPROGRAM_MAX_ARRAY_BYTES``."""
    given = os.environ.get(MAX_ARRAY_BYTES_ENV, "").strip()
    if given:
        try:
            value = int(float(given))
        except ValueError:
            raise DataError(
                f"${MAX_ARRAY_BYTES_ENV}={given!r} is not a number of bytes (e.g. 8e9)."
            ) from None
        if value > 0:
            return value
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: assume 16 GiB
        memory = 16 << 30
    return memory // 2


def check_array_sizes(path: Path) -> None:
    """Refuse a ``.npy`` file, or a ``.npz`` member, whose header claims more bytes than it
    holds (numpy would allocate the claimed size before reading), and a file whose arrays
    would take more memory than :func:`array_bytes_bound` once read (a ``.npz`` compresses:
    a few MB on disk may decompress to many GB): DataError naming it.

    A ``.npz`` member may hold up to its recorded uncompressed size, which reading checks.
    """
    bound = array_bytes_bound()
    with open(path, "rb") as fh:
        if fh.read(6) == b"\x93NUMPY":
            fh.seek(0)
            _check_header(fh, path.stat().st_size, str(path))
            _check_total(path.stat().st_size, bound, path)
            return
    with zipfile.ZipFile(path) as archive:
        members = [info for info in archive.infolist() if info.filename.endswith(".npy")]
        _check_total(sum(info.file_size for info in members), bound, path)
        for info in members:
            with archive.open(info) as fh:
                _check_header(fh, info.file_size, f"{path}, array {info.filename[:-4]!r}")


def _check_total(size: int, bound: int, path: Path) -> None:
    if size > bound:
        raise DataError(
            f"{path} holds {size / 1e9:,.1f} GB of arrays once read (uncompressed), more than "
            f"the {bound / 1e9:,.1f} GB reprogram reads from one file on this machine (half "
            f"its memory). Split the data into smaller files, or set "
            f"${MAX_ARRAY_BYTES_ENV} to a larger number of bytes if the machine can hold it."
        )


#: numpy's readers of a ``.npy`` header by format version: ``(shape, fortran, dtype)``.
HEADER_READERS = {
    (1, 0): np_format.read_array_header_1_0,
    (2, 0): np_format.read_array_header_2_0,
}


def _check_header(fh: IO[bytes], size: int, where: str) -> None:
    reader = HEADER_READERS.get(np_format.read_magic(fh))
    if reader is None:
        return  # (3, 0): numpy reads and checks it
    shape, _, dtype = reader(fh)
    if dtype.hasobject:
        return  # refused when read (never unpickled)
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    held = size - fh.tell()
    if claimed > held:
        raise DataError(
            f"{where}: the header claims an array of shape {list(shape)} ({claimed:,} bytes) but "
            f"the file holds {max(held, 0):,}; it is truncated or corrupt. Save it again with "
            "numpy.save/numpy.savez."
        )


def _array(loaded: NpzFile, key: str, path: Path) -> np.ndarray:
    """One array; object arrays (pickles) are refused."""
    try:
        return loaded[key]
    except ValueError:
        raise DataError(
            f"{path}: array {key!r} holds Python objects, which are never unpickled; save "
            "plain numeric arrays (and class_names as a string array)."
        ) from None


def _check_keys(arrays: dict[str, np.ndarray], path: Path) -> None:
    if all(k in arrays for k in SINGLE) and not any(k in arrays for k in REQUIRED):
        return  # one set, split here
    missing = [k for k in REQUIRED if k not in arrays]
    if ("x_val" in arrays) != ("y_val" in arrays):
        missing.append("y_val" if "x_val" in arrays else "x_val")
    if missing:
        raise DataError(
            f"{path} lacks array(s) {', '.join(missing)}; it has "
            f"{', '.join(sorted(arrays)) or 'none'}. Needed: {', '.join(REQUIRED)} "
            "(optional: x_val with y_val, class_names), or just x and y (20% of them then held "
            "out as the test split)."
        )


def _name_labels(arrays: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """``arrays`` with string labels (``y``, ``y_train``, ``y_test``, ``y_val``) turned into
    class numbers: positions in ``class_names`` when given, else in the sorted names of the
    training labels (stored as ``class_names``). Numeric labels pass unchanged.

    Raises:
        DataError: a label that ``class_names`` lacks (or, without it, that training lacks),
            or string labels in some splits and numbers in others.
    """
    keys = [k for k in ("y", "y_train", "y_test", "y_val") if k in arrays]
    strings = [k for k in keys if arrays[k].dtype.kind in "US"]
    if not strings:
        return arrays
    if len(strings) != len(keys):
        raise DataError(
            f"{path}: labels {', '.join(strings)} are strings but "
            f"{', '.join(k for k in keys if k not in strings)} are numbers; use one kind."
        )
    out = dict(arrays)
    text = {k: np.char.strip(arrays[k].astype(str)) for k in keys}
    if "class_names" in arrays:
        names = [str(n) for n in arrays["class_names"].astype(str).tolist()]
    else:
        names = sorted(set(text[keys[0]].ravel().tolist()))
        out["class_names"] = np.array(names)
    index = {n: i for i, n in enumerate(names)}
    for k in keys:
        unknown = sorted(set(text[k].ravel().tolist()) - set(index))
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5])
            whence = "class_names" if "class_names" in arrays else "the training labels"
            raise DataError(
                f"{path}: {k} holds label(s) {shown} that {whence} lack(s); every class "
                "needs training examples (and a name in class_names when given)."
            )
        out[k] = np.vectorize(index.__getitem__, otypes=[np.int64])(text[k])
    return out


def _hold_out(arrays: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """A single ``x, y`` set dealt into ``x_train, y_train, x_test, y_test``: a fixed
    stratified :data:`TEST_FRACTION` held out with :data:`SPLIT_SEED`."""
    if "x" not in arrays:
        return arrays
    x, y = arrays["x"], check_labels(arrays["y"], f"{path}, labels y")
    check_lengths(x, y, f"{path}, arrays x and y")
    keep, held = (i.numpy() for i in holdout_split(torch.from_numpy(y), TEST_FRACTION,
                                                    SPLIT_SEED))
    if len(held) == 0:
        raise DataError(
            f"{path}: every class has a single example, too few to hold out a test split; add "
            "examples or save x_train, y_train, x_test, y_test."
        )
    out = {k: v for k, v in arrays.items() if k not in SINGLE}
    out.update(x_train=x[keep], y_train=y[keep], x_test=x[held], y_test=y[held])
    return out


def _class_names(arrays: dict[str, np.ndarray], splits: list[Split], path: Path) -> list[str]:
    labels = [s.y.numpy() for s in splits]
    if "class_names" not in arrays:
        return default_class_names(labels, str(path))
    names = arrays["class_names"]
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise DataError(f"{path}: class_names must be a 1-D array of strings, got {names.dtype}.")
    out = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
    check_class_names(out, labels, f"{path}")
    return out


def kinds_of(rest: str) -> frozenset[str]:
    """``{"image"}`` or ``{"series"}`` from the shape in the header of the file's ``x_train``
    (or ``x``) array, read without loading it; empty when the file cannot tell."""
    path = Path(rest.split("#", 1)[0]).expanduser()
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            member = next((f"{k}.npy" for k in ("x_train", "x") if f"{k}.npy" in names), None)
            if member is None:
                return frozenset()
            with archive.open(member) as fh:
                reader = HEADER_READERS.get(np_format.read_magic(fh))
                if reader is None:
                    return frozenset()
                shape = reader(fh)[0]
    except (OSError, ValueError, zipfile.BadZipFile, KeyError, SyntaxError):
        return frozenset()
    if len(shape) < 2:
        return frozenset()
    return frozenset({"series" if looks_like_series(np.empty((0, *shape[1:]))) else "image"})


@TARGETS.register(
    "npz:",
    help="PATH.npz with arrays x_train, y_train, x_test, y_test "
    "(optional x_val, y_val, class_names), or x, y (20% held out as test)",
    prefix=True,
)
def npz(rest: str) -> TargetData:
    """The task saved at ``rest``: ``x`` float32 ``[N, C, H, W]`` in ``[0, 1]``, ``y`` ``[N]``."""
    path = Path(rest).expanduser()
    arrays = _read(path)
    _check_keys(arrays, path)
    single = "x" in arrays and "x_train" not in arrays
    arrays = _hold_out(_name_labels(arrays, path), path)
    series = looks_like_series(arrays["x_train"])  # [N, L] or [N, 1, L]: a time series
    split = make_series_split if series else make_split
    train = split(arrays["x_train"], arrays["y_train"], f"{path}, train split")
    test = split(arrays["x_test"], arrays["y_test"], f"{path}, test split")
    check_label_sets(train.y, test.y, f"{path}, test split")
    val = None
    if "x_val" in arrays:
        val = split(arrays["x_val"], arrays["y_val"], f"{path}, validation split")
        check_label_sets(train.y, val.y, f"{path}, validation split")
    for part, name in ((test, "test"), (val, "validation")):
        if part is not None and part.x.shape[1:] != train.x.shape[1:]:
            raise DataError(
                f"{path}: {name} images are {list(part.x.shape[1:])} but train images are "
                f"{list(train.x.shape[1:])} ([C, H, W]); all splits need one image size."
            )
    class_names = _class_names(arrays, [s for s in (train, test, val) if s is not None], path)
    return TargetData(
        name=f"npz:{rest}",
        portable_name=portable_name("npz", rest),
        train=train,
        test=test,
        val=val,
        class_names=class_names,
        modality="series" if series else "image",
        info={
            "source": str(path),
            "validation": "given (x_val, y_val)" if val is not None else "carved from train",
            **({"split": f"x and y only; fixed stratified {TEST_FRACTION:.0%} test split "
                         f"(seed {SPLIT_SEED}, independent of the run seed)"} if single else {}),
        },
    )


KIND_PROBES["npz:"] = kinds_of
