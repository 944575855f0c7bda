"""Benchmark suites: task accuracy (vision, ucr-v2s, blackbox) and speed (efficiency)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_csv(
    path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str] | None = None
) -> None:
    """Write ``rows`` as CSV with a header (``fields``: the columns; default the first row's)."""
    columns = list(fields) if fields is not None else list(rows[0])
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
