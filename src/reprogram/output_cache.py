"""Source outputs remembered per input, for programs that train nothing.

When a program has no trainable parameters and answers the same for the same input (``text``
spells a sequence through the source's own embeddings), the frozen source's output for an
example never changes during training: only the mapping learns. :class:`OutputCache` then
keeps each example's output ``[K_s]`` the first time it is computed, keyed by a digest of the
input row's bytes, so every later epoch (and validation) costs the mapping alone. A program
opts in with the class attribute ``caches_source_outputs = True``; the model checks that it
also holds nothing trainable. Memory is bounded: past ``limit_bytes`` (1 GB by default,
``REPROGRAM_OUTPUT_CACHE_BYTES`` to move it, 0 to switch it off) new outputs are computed
and not kept.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import torch

from .errors import ReprogramError

#: Environment variable that bounds the cache (bytes; 0 switches caching off).
LIMIT_ENV = "REPROGRAM_OUTPUT_CACHE_BYTES"
DEFAULT_LIMIT = 10**9


def cache_limit() -> int:
    """The byte bound from :data:`LIMIT_ENV`, or :data:`DEFAULT_LIMIT`.

    Raises:
        ReprogramError: the variable is not a whole number of bytes.
    """
    text = os.environ.get(LIMIT_ENV, "").strip()
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit():
        raise ReprogramError(
            f"{LIMIT_ENV}={text!r}: give a whole number of bytes (0 switches the source-output "
            "cache off)."
        )
    return int(text)


class OutputCache:
    """Outputs ``[K_s]`` of a deterministic function of each input row, up to a byte bound.

    Args:
        limit_bytes: the most bytes of outputs kept (rows past it are computed, not kept).
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.held_bytes = 0
        self.hits = 0
        self.misses = 0
        self._rows: dict[bytes, torch.Tensor] = {}

    @staticmethod
    def _key(row: torch.Tensor) -> bytes:
        """A digest of a CPU row's bytes, dtype and shape."""
        data = row.contiguous()
        digest = hashlib.blake2b(data.numpy().tobytes(), digest_size=16)
        digest.update(str((data.dtype, tuple(data.shape))).encode())
        return digest.digest()

    def __call__(self, x: torch.Tensor, compute: Callable[[torch.Tensor], torch.Tensor]
                 ) -> torch.Tensor:
        """``compute(x)`` ``[B, K_s]`` for a batch ``x`` ``[B, ...]``, from the cache where
        a row was seen before; ``compute`` runs once, on the rows not yet kept."""
        keys = [self._key(row) for row in x.detach().cpu()]  # one copy off the device
        missing = [i for i, k in enumerate(keys) if k not in self._rows]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        fresh: dict[int, torch.Tensor] = {}
        if missing:
            with torch.no_grad():
                out = compute(x[missing]).detach()
            for j, i in enumerate(missing):
                fresh[i] = out[j]
                size = out[j].numel() * out[j].element_size()
                if keys[i] not in self._rows and self.held_bytes + size <= self.limit_bytes:
                    self._rows[keys[i]] = out[j].clone()
                    self.held_bytes += size
        rows = [fresh[i] if i in fresh else self._rows[k] for i, k in enumerate(keys)]
        return torch.stack(rows)

    def __len__(self) -> int:
        return len(self._rows)

    def record(self) -> dict[str, int]:
        """What the cache did: rows kept, bytes held, hits and misses."""
        return {
            "rows": len(self._rows),
            "bytes": self.held_bytes,
            "hits": self.hits,
            "misses": self.misses,
        }
