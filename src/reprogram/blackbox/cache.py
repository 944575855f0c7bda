"""Answers already paid for: a bounded LRU cache of probability rows keyed by input bytes.

A key is the SHA-256 of one input's shape and float32 bytes, so only bit-identical inputs hit.
The cache is part of a run's checkpointed state (keys ``[N, 32]`` uint8, rows ``[N, K]``
float32, least recently used first), so a resumed run gets exactly the hits an uninterrupted
one would.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import torch


def input_key(row: np.ndarray) -> bytes:
    """SHA-256 digest (32 bytes) of one input's shape and float32 bytes."""
    h = hashlib.sha256(str(tuple(row.shape)).encode())
    h.update(np.ascontiguousarray(row, dtype=np.float32).tobytes())
    return h.digest()


class AnswerCache:
    """LRU map from input keys to probability rows ``[K]`` (``capacity`` rows at most)."""

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 0:
            raise ValueError(f"cache capacity must be at least 0, got {capacity}")
        self.capacity = int(capacity)
        self._rows: OrderedDict[bytes, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: bytes) -> np.ndarray | None:
        """The cached row for ``key`` (marked most recently used), or None."""
        row = self._rows.get(key)
        if row is not None:
            self._rows.move_to_end(key)
        return row

    def put(self, key: bytes, row: np.ndarray) -> None:
        """Store ``row``; evicts the least recently used rows beyond ``capacity``."""
        if self.capacity == 0:
            return
        self._rows[key] = np.array(row, dtype=np.float32, copy=True)
        self._rows.move_to_end(key)
        while len(self._rows) > self.capacity:
            self._rows.popitem(last=False)

    def clear(self) -> None:
        self._rows.clear()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Keys ``[N, 32]`` uint8 and rows ``[N, K]`` float32, least recently used first."""
        if not self._rows:
            return {"keys": torch.zeros(0, 32, dtype=torch.uint8), "rows": torch.zeros(0, 0)}
        keys = np.frombuffer(b"".join(self._rows), dtype=np.uint8).reshape(-1, 32)
        rows = np.stack(list(self._rows.values()))
        return {"keys": torch.from_numpy(keys.copy()), "rows": torch.from_numpy(rows)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._rows.clear()
        keys, rows = state["keys"].numpy(), state["rows"].numpy()
        for key, row in zip(keys, rows, strict=True):
            self._rows[key.tobytes()] = row.astype(np.float32, copy=True)
        while len(self._rows) > self.capacity:
            self._rows.popitem(last=False)


__all__ = ["AnswerCache", "input_key"]
