"""Safe writes: a fresh temporary file beside the target, then one atomic rename.

The temporary file has a unique name created with ``O_EXCL`` (``tempfile.mkstemp``), so a
link planted in the directory under a predictable name is never followed, and the rename
replaces the directory entry itself (a link at the final name is replaced, not written
through). The file gets the usual permissions (``0o666`` less the umask), not ``mkstemp``'s
``0o600``, so artifacts stay readable to the people and services they are shared with.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically,
    on failure it is removed and ``path`` is left as it was."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` into a fresh temporary file, then rename it onto ``path``."""
    with atomic_file(path) as tmp:
        write(tmp)


__all__ = ["atomic_file", "write_atomic"]
