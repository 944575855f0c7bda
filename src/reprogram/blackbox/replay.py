"""Answers paid for since the last checkpoint, kept on disk so a resumed run does not pay twice.

A black-box run checkpoints at the end of each epoch. Queries sent after that (a partial epoch
before a kill, SIGTERM or a failing endpoint) were paid for; the run that resumes restores the
parameters, the optimizer and the random state of the checkpoint and sends exactly the same
inputs again. :class:`AnswerLog` appends every answer the box gave to ``queries.answers`` in
``--out`` as it arrives; on ``--resume`` the answers are read back and each is used once, in
place of a query, when the same input (bit for bit) is asked again. After each checkpoint the
log is emptied: the checkpoint holds the run's state from then on.

The file is raw fixed-size records, never unpickled: 32 bytes of input key (SHA-256, as the
answer cache's) then ``K`` float32 probabilities. A record cut short by a kill is ignored. It
grows by ``32 + 4 K`` bytes per query within one epoch (about 4 MB per 1,000 queries of a
1,000-class box) and is emptied at every checkpoint.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO

import numpy as np

ANSWERS_NAME = "queries.answers"
_KEY = 32


class AnswerLog:
    """Append-only record of answers (``[K]`` float32 per input key) since the last checkpoint."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()

    def open(self, path: Path, fresh: bool) -> None:
        """Append to ``path`` from now on (``fresh``: start it empty). A link planted at
        ``path`` is replaced, never written through."""
        with self._lock:
            self._close()
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():
                path.unlink()
            mode = os.O_TRUNC if fresh else os.O_APPEND
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | mode, 0o666)
            self._file = open(fd, "ab", buffering=0)

    def append(self, keys: list[bytes], rows: np.ndarray) -> None:
        """Record ``rows`` ``[N, K]`` as the answers to the inputs with ``keys`` (one write)."""
        if self._file is None or not keys:
            return
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        record = np.empty((len(keys), _KEY + rows.shape[1] * 4), dtype=np.uint8)
        record[:, :_KEY] = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, _KEY)
        record[:, _KEY:] = rows.view(np.uint8).reshape(len(keys), -1)
        with self._lock:
            if self._file is not None:
                self._file.write(record.tobytes())

    def clear(self) -> None:
        """Empty the log (a checkpoint now holds everything it recorded)."""
        with self._lock:
            if self._file is not None:
                self._file.truncate(0)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @staticmethod
    def read(path: Path, num_classes: int) -> dict[bytes, np.ndarray]:
        """The answers recorded at ``path`` by input key (empty when there is no log); a
        trailing partial record (a kill mid-write) is dropped."""
        path = Path(path)
        if not path.is_file() or path.is_symlink():
            return {}
        size = _KEY + 4 * num_classes
        raw = np.fromfile(path, dtype=np.uint8)
        whole = raw[: len(raw) // size * size].reshape(-1, size)
        out: dict[bytes, np.ndarray] = {}
        for record in whole:
            row = record[_KEY:].view(np.float32).copy()
            if np.isfinite(row).all():
                out[record[:_KEY].tobytes()] = row
        return out


__all__ = ["ANSWERS_NAME", "AnswerLog"]
