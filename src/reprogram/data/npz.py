"""``npz:PATH``: a target task saved with ``numpy.savez`` (never unpickled).

Required arrays ``x_train, y_train, x_test, y_test``; optional ``x_val, y_val`` (together) and
``class_names`` (strings, one per class; default ``"0" … "K-1"``). Images may be
``[N, H, W]``, ``[N, C, H, W]`` or ``[N, H, W, C]`` with ``C`` in ``{1, 3}``, uint8 or float in
``[0, 1]``; labels are integer classes from 0. Arrays ``[N, L]`` or ``[N, 1, L]`` are time series
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
from numpy.lib import format as np_format
from numpy.lib.npyio import NpzFile

from ..errors import DataError
from . import TARGETS
from .base import Split, TargetData
from .checks import (
    check_class_names,
    check_label_sets,
    check_numpy_magic,
    default_class_names,
    looks_like_series,
    make_series_split,
    make_split,
)

REQUIRED = ("x_train", "y_train", "x_test", "y_test")


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


def _check_header(fh: IO[bytes], size: int, where: str) -> None:
    version = np_format.read_magic(fh)
    readers = {(1, 0): np_format.read_array_header_1_0, (2, 0): np_format.read_array_header_2_0}
    if version not in readers:
        return  # (3, 0): numpy reads and checks it
    shape, _, dtype = readers[version](fh)
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
    missing = [k for k in REQUIRED if k not in arrays]
    if ("x_val" in arrays) != ("y_val" in arrays):
        missing.append("y_val" if "x_val" in arrays else "x_val")
    if missing:
        raise DataError(
            f"{path} lacks array(s) {', '.join(missing)}; it has "
            f"{', '.join(sorted(arrays)) or 'none'}. Needed: {', '.join(REQUIRED)} "
            "(optional: x_val with y_val, class_names)."
        )


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


@TARGETS.register(
    "npz:",
    help="PATH.npz with arrays x_train, y_train, x_test, y_test "
    "(optional x_val, y_val, class_names)",
    prefix=True,
)
def npz(rest: str) -> TargetData:
    """The task saved at ``rest``: ``x`` float32 ``[N, C, H, W]`` in ``[0, 1]``, ``y`` ``[N]``."""
    path = Path(rest).expanduser()
    arrays = _read(path)
    _check_keys(arrays, path)
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
        train=train,
        test=test,
        val=val,
        class_names=class_names,
        modality="series" if series else "image",
        info={
            "source": str(path),
            "validation": "given (x_val, y_val)" if val is not None else "carved from train",
        },
    )
