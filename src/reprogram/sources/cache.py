"""The user cache directory and atomic writes into it.

``$REPROGRAM_CACHE`` when set, else ``$XDG_CACHE_HOME/reprogram``, else
``~/.cache/reprogram``. Things derived once from packaged assets (converted weights,
generated reference audio) live there and are rebuilt when missing or stale.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ..errors import ReprogramError


def cache_dir(*parts: str) -> Path:
    """``<user cache>/reprogram/<parts…>``, created if needed."""
    root = os.environ.get("REPROGRAM_CACHE")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "reprogram"
    path = base.joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReprogramError(
            f"cannot create the cache directory {path} ({exc}); set REPROGRAM_CACHE to a "
            "writable directory."
        ) from None
    return path


def atomic_path(final: Path) -> Path:
    """A fresh temporary file beside ``final`` (same file system, so ``os.replace`` is atomic)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    return Path(tmp)


def atomic_write_bytes(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` atomically (temporary file, then rename)."""
    tmp = atomic_path(final)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


__all__ = ["atomic_path", "atomic_write_bytes", "cache_dir", "sha256_file"]
