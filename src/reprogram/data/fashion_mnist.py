"""Fashion-MNIST: 60,000 train / 10,000 test grey 28×28 images of 10 clothing classes.

Read offline from Debian's ``dataset-fashion-mnist`` package (idx ``.gz`` files under
``/usr/share/datasets/fashion-mnist``); failing that, downloaded by torchvision into the
cache (``$REPROGRAM_CACHE`` or ``~/.cache/reprogram``).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import TARGETS
from .base import TargetData
from .checks import make_split

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_UBYTE = 0x08  # idx type code of unsigned bytes

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


def cache_dir() -> Path:
    """Where downloads go: ``$REPROGRAM_CACHE`` or ``~/.cache/reprogram``."""
    return Path(os.environ.get("REPROGRAM_CACHE") or Path.home() / ".cache" / "reprogram")


def read_idx(path: Path) -> np.ndarray:
    """A gzip-compressed idx file of bytes as a uint8 array (``[N, H, W]`` or ``[N]``)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE:
        raise DataError(f"{path} is not an idx file of bytes; reinstall dataset-fashion-mnist.")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated; reinstall dataset-fashion-mnist.")
    return data.reshape(shape)


def _from_debian(root: Path) -> Arrays | None:
    """Train/test ``(images [N, 28, 28] uint8, labels [N])`` from idx files, or None if absent."""
    if not all((root / name).is_file() for pair in _FILES.values() for name in pair):
        return None
    try:
        return {
            split: (read_idx(root / xs), read_idx(root / ys)) for split, (xs, ys) in _FILES.items()
        }
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read Fashion-MNIST from {root}: {exc}.") from None


def _from_torchvision(root: Path) -> Arrays:
    """Train/test arrays downloaded by torchvision into ``root`` (needs the internet once)."""
    from torchvision.datasets import FashionMNIST

    out = {}
    for split in ("train", "test"):
        ds = FashionMNIST(str(root), train=split == "train", download=True)
        out[split] = (ds.data.numpy(), ds.targets.numpy())
    return out


def load_arrays() -> tuple[Arrays, str]:
    """Fashion-MNIST arrays and where they came from; DataError if neither way works."""
    arrays = _from_debian(DEBIAN_DIR)
    if arrays is not None:
        return arrays, str(DEBIAN_DIR)
    root = cache_dir()
    try:
        return _from_torchvision(root), f"torchvision download in {root}"
    except (ImportError, OSError, RuntimeError, ValueError) as exc:  # no torchvision/network
        raise DataError(
            f"Fashion-MNIST is not available: no idx files in {DEBIAN_DIR}, and downloading it "
            f"into {root} failed ({type(exc).__name__}: {exc}). Install it with "
            "`apt-get install dataset-fashion-mnist`, or run once with internet access."
        ) from None


@TARGETS.register(
    "fashion-mnist",
    help="Fashion-MNIST: 10 clothing classes, 60k/10k grey 28x28 images",
    tags=("image",),
)
def fashion_mnist() -> TargetData:
    """Fashion-MNIST with its official split: ``x`` float32 ``[N, 1, 28, 28]`` in ``[0, 1]``."""
    arrays, origin = load_arrays()
    splits = {s: make_split(x, y, f"fashion-mnist {s} split") for s, (x, y) in arrays.items()}
    return TargetData(
        name="fashion-mnist",
        train=splits["train"],
        test=splits["test"],
        class_names=list(CLASS_NAMES),
        info={"source": origin, "split": "official 60,000 train / 10,000 test"},
    )
