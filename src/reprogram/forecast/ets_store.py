"""AutoETS forecasts remembered on disk, so each window is fitted once for every horizon.

AutoETS is refitted on every window it scores (about 0.2 s each on one core; an ETT test split
is some 20,000 windows). A window's fitted model, and so its point forecast, does not depend
on the horizon asked for: the first 96 steps of a 720-step forecast are the 96-step forecast.
:class:`ForecastStore` therefore keeps, per window, a forecast of at least
:data:`STORE_STEPS` steps (float32, as the forecaster answers), keyed by a digest of the
window's values and the model's settings; a later run at any horizon up to that length reads
it instead of fitting again. The four standard horizons of a set then cost about one fit of
each window instead of four.

The store is one SQLite file per statsforecast version under the user cache
(``<cache>/autoets/``, see :func:`reprogram.sources.cache.cache_dir`), safe for several
processes at once; about 4 KB a window (85 MB for ETTh2's 720-hour cell).
``REPROGRAM_ETS_CACHE=0`` switches it off (every window is fitted, nothing is written).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import ReprogramError
from ..runtime import switch
from ..sources.cache import cache_dir

#: Environment variable: ``0`` switches the store off.
STORE_ENV = "REPROGRAM_ETS_CACHE"
#: Steps remembered per window at the least (the longest standard horizon).
STORE_STEPS = 720
#: Keys per ``SELECT … IN`` (under SQLite's bound on host parameters).
_CHUNK = 500


def store_enabled() -> bool:
    """Whether :data:`STORE_ENV` leaves the store on (unset, ``1``) or off (``0``).

    Raises:
        ReprogramError: the variable holds something other than ``0`` or ``1``.
    """
    return switch(STORE_ENV, "remember fitted AutoETS forecasts on disk",
                  "fit every window afresh")


def window_key(y: np.ndarray, settings: str) -> bytes:
    """Digest (16 bytes) of a window float64 ``[L]`` and the model's settings string."""
    h = hashlib.blake2b(digest_size=16)
    h.update(settings.encode())
    h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    return h.digest()


def store_path(version: str) -> Path:
    """The user's store file for this statsforecast ``version`` (its directory created).

    Raises:
        ReprogramError: the cache directory cannot be created.
    """
    return cache_dir("autoets") / f"statsforecast-{version}.sqlite"


class ForecastStore:
    """Forecasts float32 ``[S]`` per window key, ``S`` ≥ the horizon a reader asks for.

    Args:
        path: the SQLite file (created with its table when missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, timeout=300)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS forecasts "
                "(key BLOB PRIMARY KEY, steps INTEGER NOT NULL, mean BLOB NOT NULL)"
            )
            self._db.commit()
        except sqlite3.Error as exc:
            raise self._error("open", exc) from None

    def get(self, keys: Sequence[bytes], steps: int) -> dict[bytes, np.ndarray]:
        """The stored forecasts ``[steps]`` (float32) of those ``keys`` that hold as many.

        Raises:
            ReprogramError: the file cannot be read (damaged, locked past the timeout).
        """
        found: dict[bytes, np.ndarray] = {}
        try:
            for i in range(0, len(keys), _CHUNK):
                chunk = list(keys[i : i + _CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, steps, mean FROM forecasts WHERE key IN ({marks}) "
                    "AND steps >= ?",
                    (*chunk, steps),
                )
                for key, _, mean in rows:
                    found[bytes(key)] = np.frombuffer(mean, dtype=np.float32)[:steps].copy()
        except sqlite3.Error as exc:
            raise self._error("read", exc) from None
        return found

    def put(self, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        """Remember forecasts ``[S]``; a longer one replaces a shorter one, never the reverse.

        Raises:
            ReprogramError: the file cannot be written (damaged, full disk, locked).
        """
        rows = [(key, len(mean), np.asarray(mean, dtype=np.float32).tobytes())
                for key, mean in items]
        if not rows:
            return
        try:
            self._db.executemany(
                "INSERT INTO forecasts (key, steps, mean) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET steps = excluded.steps, mean = excluded.mean "
                "WHERE excluded.steps > forecasts.steps",
                rows,
            )
            self._db.commit()
        except sqlite3.Error as exc:
            raise self._error("write", exc) from None

    def _error(self, what: str, exc: Exception) -> ReprogramError:
        return ReprogramError(
            f"cannot {what} the AutoETS forecast store {self.path} ({exc}); delete the file "
            f"(it only saves refitting), or set {STORE_ENV}=0 to fit every window without it."
        )


__all__ = [
    "STORE_ENV",
    "STORE_STEPS",
    "ForecastStore",
    "store_enabled",
    "store_path",
    "window_key",
]
