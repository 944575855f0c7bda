"""The colour classification targets of the visual-reprogramming papers, by name.

``cifar10``, ``cifar100``, ``svhn``, ``gtsrb``, ``flowers102``, ``dtd``, ``eurosat`` and
``oxford-pets``: downloaded once by torchvision (its URLs, and its MD5 checksum of every file
before anything is extracted) into ``$REPROGRAM_TORCHVISION_DATA``, else
``<cache>/torchvision`` (``$REPROGRAM_CACHE`` or ``~/.cache/reprogram``), else wherever
``NAME#root=DIR`` says, in torchvision's own layout; from then on they are read from there
offline. Offline and absent, a :class:`~reprogram.errors.DataError` says which files to put
where. ``#download=false`` never tries the network; ``#size=S`` sets the image side.

reprogram reads the files itself (torchvision only downloads and extracts them), so that what
a file holds is checked and reported as a DataError, images go through the same decompression
guard as ``folder:``, and **nothing is unpickled**: torchvision's ``CIFAR10``/``CIFAR100``
classes read the *python* release, whose batches are pickles, so these targets use the
authors' *binary* release instead (``cifar-10-binary.tar.gz``, ``cifar-100-binary.tar.gz``:
fixed records of label byte(s) then 3 × 32 × 32 pixel bytes, MD5-checked on download). SVHN
and Flowers-102's split files are MATLAB ``.mat`` files, read by ``scipy.io.loadmat`` (no
pickle); the other sets are image files with text split lists.

Splits are each set's own: CIFAR, SVHN and GTSRB train/test; Flowers-102 and DTD (partition
1) train/val/test, their val split given as validation; Oxford-IIIT Pet trainval/test. EuroSAT
defines none, so a fixed stratified 20% is held out as test (seed 0, independent of the run
seed), as ``folder:`` does. Validation is otherwise carved from train by the run, as for other
targets. Images are float32 ``[N, 3, S, S]`` in ``[0, 1]``: CIFAR and SVHN at their native 32,
the others converted to RGB and squashed to ``S × S`` (bilinear, as ILM-VP's
``Resize((S, S))``): GTSRB 32, EuroSAT 64 (its native size), Flowers-102, DTD and Pets 128.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from . import TARGETS
from .base import Split, TargetData
from .checks import check_dense_labels, check_label_sets, make_split
from .fashion_mnist import cache_dir
from .folder import EXTENSIONS, decode_image
from .splits import holdout_split

DATA_ENV = "REPROGRAM_TORCHVISION_DATA"
#: EuroSAT has no official split: this share of each class is held out as test, seed 0.
EUROSAT_TEST_FRACTION = 0.2
SPLIT_SEED = 0
MAX_SIZE = 1024

#: Arrays per split name: images uint8 ``[N, H, W, 3]`` and labels int64 ``[N]``.
Arrays = dict[str, tuple[np.ndarray, np.ndarray]]

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
CIFAR100_CLASSES = [
    "apple", "aquarium fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak tree", "orange", "orchid", "otter", "palm tree", "pear", "pickup truck", "pine tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow tree", "wolf", "woman", "worm",
]  # fmt: skip
GTSRB_CLASSES = [
    "speed limit 20 km/h", "speed limit 30 km/h", "speed limit 50 km/h", "speed limit 60 km/h",
    "speed limit 70 km/h", "speed limit 80 km/h", "end of speed limit 80 km/h",
    "speed limit 100 km/h", "speed limit 120 km/h", "no passing",
    "no passing for vehicles over 3.5 tons", "right of way at the next intersection",
    "priority road", "yield", "stop", "no vehicles", "vehicles over 3.5 tons prohibited",
    "no entry", "general caution", "dangerous curve to the left", "dangerous curve to the right",
    "double curve", "bumpy road", "slippery road", "road narrows on the right", "road work",
    "traffic signals", "pedestrians", "children crossing", "bicycles crossing",
    "beware of ice or snow", "wild animals crossing", "end of all speed and passing limits",
    "turn right ahead", "turn left ahead", "ahead only", "go straight or right",
    "go straight or left", "keep right", "keep left", "roundabout mandatory", "end of no passing",
    "end of no passing by vehicles over 3.5 tons",
]  # fmt: skip


@dataclass
class TorchvisionOptions:
    """Options of a torchvision colour target (``cifar10#size=64#root=DIR``)."""

    root: str = field(
        default="",
        metadata={
            "help": f"folder in torchvision's layout to read and download into (default "
            f"${DATA_ENV}, else $REPROGRAM_CACHE/torchvision or ~/.cache/reprogram/torchvision)"
        },
    )
    size: int = field(
        default=0,
        metadata={
            "help": "square image side S; 0 is the set's own (32 for cifar10, cifar100, svhn, "
            "gtsrb; 64 eurosat; 128 flowers102, dtd, oxford-pets)"
        },
    )
    download: bool = field(
        default=True,
        metadata={"help": "false: never use the network, read only what the folder holds"},
    )

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_SIZE:
            raise ValueError(f"size must be 0 (the set's own) or 1 … {MAX_SIZE}, got {self.size!r}")


@dataclass(frozen=True)
class _Set:
    """How one data set is found, fetched and read (paths relative to the data root)."""

    name: str
    title: str
    help: str
    size: int  # default image side
    native: bool  # every image of the set already has side ``size``
    folder: str  # where torchvision puts it ("" = the root itself)
    needs: tuple[str, ...]  # paths that must exist to read it offline
    files: str  # what to put into ``folder`` by hand
    page: str
    megabytes: int
    download: Callable[[Path], None]
    read: Callable[[Path, int], tuple[Arrays, list[str], str]]


def data_root(option: str = "") -> Path:
    """Where the sets live: ``#root=``, else ``$REPROGRAM_TORCHVISION_DATA``, else
    ``<cache>/torchvision`` (``$REPROGRAM_CACHE`` or ``~/.cache/reprogram``)."""
    if option:
        return Path(option).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else cache_dir() / "torchvision"


# --------------------------------------------------------------------------- small helpers
def _one_line(text: object) -> str:
    """``str(text)`` with every run of whitespace (newlines too) made one space."""
    return " ".join(str(text).split())


def _inside(base: Path, relative: str, where: str) -> Path:
    """``base / relative``, refused (DataError) if ``relative`` would leave ``base``."""
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise DataError(f"{where}: entry {relative!r} is not a file name under {base}.")
    return base / rel


def _rgb(size: int, im: Image.Image) -> np.ndarray:
    """``im`` as RGB uint8 ``[size, size, 3]``, squashed to a square (bilinear, antialiased)."""
    im = im.convert("RGB")
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def _read_images(paths: Sequence[Path], size: int) -> np.ndarray:
    """Decode ``paths`` into uint8 ``[N, size, size, 3]`` (DataError naming a bad file)."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    convert = partial(_rgb, size)
    for i, path in enumerate(paths):
        out[i] = decode_image(path, convert)
    return out


def _resize_array(x: np.ndarray, size: int) -> np.ndarray:
    """uint8 images ``[N, H, W, 3]`` squashed to ``[N, size, size, 3]`` (unchanged if equal)."""
    if x.shape[1:3] == (size, size):
        return x
    out = np.empty((len(x), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(x):
        out[i] = _rgb(size, Image.fromarray(image))
    return out


def _read_lines(path: Path) -> list[str]:
    """Non-empty, non-comment lines of a text split file; DataError if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot read {path} ({_one_line(exc)}); delete it and download it again."
        ) from None
    return [s.strip() for s in text.splitlines() if s.strip() and not s.startswith("#")]


def _image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in EXTENSIONS | {".ppm"} and not p.name.startswith(".")
    )


def _class_dirs(folder: Path) -> list[Path]:
    """Visible sub-folders of ``folder``, sorted by name; DataError if there are none."""
    dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise DataError(f"{folder} holds no class folders; delete it and download again.")
    return dirs


def _names(all_names: Sequence[str], arrays: Arrays, where: str) -> list[str]:
    """The first ``K`` of ``all_names``: labels must be exactly the classes ``0 … K-1``."""
    k = check_dense_labels([y for _, y in arrays.values()], where)
    if k > len(all_names):
        raise DataError(
            f"{where}: labels go up to {k - 1} but the set has {len(all_names)} classes."
        )
    return list(all_names[:k])


def _loadmat(path: Path, keys: Sequence[str], **kwargs: object) -> dict[str, np.ndarray]:
    """Arrays ``keys`` of the MATLAB file ``path`` (scipy, no pickle); DataError otherwise."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=list(keys), **kwargs)
    except Exception as exc:  # noqa: BLE001 (scipy raises many types for a bad file)
        raise DataError(
            f"cannot read {path} as a MATLAB file ({type(exc).__name__}: {_one_line(exc)}); "
            "delete it and download it again."
        ) from None
    missing = [k for k in keys if k not in mat]
    if missing:
        raise DataError(f"{path} has no variable {', '.join(missing)}; is it the right file?")
    return {k: np.asarray(mat[k]) for k in keys}


# --------------------------------------------------------------------------- CIFAR (binary)
def _cifar_records(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch: images uint8 ``[N, 32, 32, 3]`` and labels ``[N]`` (the last label
    byte of each record: CIFAR-10's only one, CIFAR-100's fine label)."""
    record = label_bytes + 3 * 32 * 32
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"cannot read {path} ({_one_line(exc)}).") from None
    if raw.size == 0 or raw.size % record:
        raise DataError(
            f"{path} is not a CIFAR binary batch: {raw.size} bytes is not a whole number of "
            f"{record}-byte records; delete it and download it again."
        )
    rows = raw.reshape(-1, record)
    images = rows[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, rows[:, label_bytes - 1].astype(np.int64)


def _read_cifar(
    folder: str,
    batches: dict[str, list[str]],
    label_bytes: int,
    classes: list[str],
    name: str,
    root: Path,
    size: int,
) -> tuple[Arrays, list[str], str]:
    """CIFAR's binary batches under ``root / folder``, images squashed to ``size`` if not 32."""
    base = root / folder
    arrays: Arrays = {}
    for split, files in batches.items():
        parts = [_cifar_records(base / f, label_bytes) for f in files]
        x = np.concatenate([p[0] for p in parts])
        arrays[split] = (_resize_array(x, size), np.concatenate([p[1] for p in parts]))
    return arrays, _names(classes, arrays, name), "official train / test"


def _download_archive(url: str, md5: str, root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(url, str(root), md5=md5)


# --------------------------------------------------------------------------- SVHN
_SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def _download_svhn(root: Path) -> None:
    from torchvision.datasets import SVHN
    from torchvision.datasets.utils import download_url

    for split in _SVHN_FILES:
        url, filename, md5 = SVHN.split_list[split]
        download_url(url, str(root), filename, md5)


def _read_svhn(root: Path, size: int) -> tuple[Arrays, list[str], str]:
    arrays: Arrays = {}
    for split, filename in _SVHN_FILES.items():
        path = root / filename
        mat = _loadmat(path, ("X", "y"))
        x, y = mat["X"], mat["y"].reshape(-1)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[2] != 3 or x.shape[3] != len(y):
            raise DataError(
                f"{path}: X has shape {list(x.shape)} ({x.dtype}); SVHN's is uint8 [32, 32, 3, N] "
                f"with N = {len(y)} labels. Delete it and download it again."
            )
        y = y.astype(np.int64)
        y[y == 10] = 0  # SVHN labels the digit 0 as 10
        arrays[split] = (_resize_array(np.ascontiguousarray(x.transpose(3, 0, 1, 2)), size), y)
    return arrays, _names([str(d) for d in range(10)], arrays, "svhn"), "official train / test"


# --------------------------------------------------------------------------- GTSRB
def _download_gtsrb(root: Path) -> None:
    from torchvision.datasets import GTSRB

    for split in ("train", "test"):
        GTSRB(str(root), split=split, download=True)


def _read_gtsrb(root: Path, size: int) -> tuple[Arrays, list[str], str]:
    base = root / "gtsrb"
    train_paths, train_y = [], []
    for folder in _class_dirs(base / "GTSRB" / "Training"):
        if not folder.name.isdigit():
            raise DataError(f"{folder}: GTSRB class folders are numbers (00000 … 00042).")
        files = [p for p in _image_files(folder) if p.suffix.lower() == ".ppm"]
        train_paths += files
        train_y += [int(folder.name)] * len(files)
    table = base / "GT-final_test.csv"
    images = base / "GTSRB" / "Final_Test" / "Images"
    test_paths, test_y = [], []
    try:
        with open(table, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter=";", skipinitialspace=True):
                test_paths.append(_inside(images, row["Filename"], str(table)))
                test_y.append(int(row["ClassId"]))
    except (OSError, KeyError, ValueError, TypeError, csv.Error) as exc:
        raise DataError(
            f"cannot read {table} (a ';'-separated table with Filename and ClassId columns): "
            f"{type(exc).__name__}: {_one_line(exc)}. Delete it and download it again."
        ) from None
    arrays = {
        "train": (_read_images(train_paths, size), np.array(train_y, dtype=np.int64)),
        "test": (_read_images(test_paths, size), np.array(test_y, dtype=np.int64)),
    }
    return arrays, _names(GTSRB_CLASSES, arrays, "gtsrb"), "official train / test"


# --------------------------------------------------------------------------- Flowers-102
_FLOWERS_SPLITS = {"train": "trnid", "val": "valid", "test": "tstid"}


def _download_flowers(root: Path) -> None:
    from torchvision.datasets import Flowers102

    Flowers102(str(root), download=True)


def _read_flowers(root: Path, size: int) -> tuple[Arrays, list[str], str]:
    from torchvision.datasets import Flowers102

    base = root / "flowers-102"
    ids = _loadmat(base / "setid.mat", tuple(_FLOWERS_SPLITS.values()), squeeze_me=True)
    labels = np.atleast_1d(
        _loadmat(base / "imagelabels.mat", ("labels",), squeeze_me=True)["labels"]
    )
    arrays: Arrays = {}
    for split, key in _FLOWERS_SPLITS.items():
        index = np.atleast_1d(ids[key]).astype(np.int64)
        if index.size and (index.min() < 1 or index.max() > len(labels)):
            raise DataError(
                f"{base / 'setid.mat'}: {key} names images outside 1 … {len(labels)} (the images "
                "imagelabels.mat labels); delete both files and download again."
            )
        paths = [base / "jpg" / f"image_{int(i):05d}.jpg" for i in index]
        y = labels[index - 1].astype(np.int64) - 1  # labels are 1 … 102
        arrays[split] = (_read_images(paths, size), y)
    names = _names(Flowers102.classes, arrays, "flowers102")
    return arrays, names, "official train (1020) / val (1020) / test (6149)"


# --------------------------------------------------------------------------- DTD
def _download_dtd(root: Path) -> None:
    from torchvision.datasets import DTD

    DTD(str(root), download=True)


def _read_dtd(root: Path, size: int) -> tuple[Arrays, list[str], str]:
    base = root / "dtd" / "dtd"
    entries = {s: _read_lines(base / "labels" / f"{s}1.txt") for s in ("train", "val", "test")}
    classes = sorted({e.split("/")[0] for e in entries["train"]})
    index = {c: i for i, c in enumerate(classes)}
    arrays: Arrays = {}
    for split, lines in entries.items():
        where = str(base / "labels" / f"{split}1.txt")
        unknown = sorted({e.split("/")[0] for e in lines} - set(index))
        if unknown:
            raise DataError(f"{where}: classes {', '.join(unknown[:5])} never occur in train1.txt.")
        paths = [_inside(base / "images", e, where) for e in lines]
        y = np.array([index[e.split("/")[0]] for e in lines], dtype=np.int64)
        arrays[split] = (_read_images(paths, size), y)
    return arrays, classes, "official partition 1: train / val / test"


# --------------------------------------------------------------------------- EuroSAT
def _download_eurosat(root: Path) -> None:
    from torchvision.datasets import EuroSAT

    EuroSAT(str(root), download=True)


def _words(name: str) -> str:
    """``HerbaceousVegetation`` → ``herbaceous vegetation``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower()


def _read_eurosat(root: Path, size: int) -> tuple[Arrays, list[str], str]:
    folders = _class_dirs(root / "eurosat" / "2750")
    paths: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(folders):
        files = _image_files(folder)
        paths += files
        labels += [label] * len(files)
    y = torch.tensor(labels, dtype=torch.int64)
    keep, held = holdout_split(y, EUROSAT_TEST_FRACTION, SPLIT_SEED)
    x = _read_images(paths, size)
    arrays = {s: (x[i.numpy()], y[i].numpy()) for s, i in (("train", keep), ("test", held))}
    split = (
        f"no official split; fixed stratified {EUROSAT_TEST_FRACTION:.0%} test split (seed "
        f"{SPLIT_SEED}, independent of the run seed)"
    )
    return arrays, [_words(f.name) for f in folders], split


# --------------------------------------------------------------------------- Oxford-IIIT Pet
def _download_pets(root: Path) -> None:
    from torchvision.datasets import OxfordIIITPet

    OxfordIIITPet(str(root), download=True)


def _read_pets(root: Path, size: int) -> tuple[Arrays, list[str], str]:
    base = root / "oxford-iiit-pet"
    arrays: Arrays = {}
    names: dict[int, str] = {}
    for split, listed in (("train", "trainval"), ("test", "test")):
        where = str(base / "annotations" / f"{listed}.txt")
        paths, y = [], []
        for line in _read_lines(base / "annotations" / f"{listed}.txt"):
            parts = line.split()
            if len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) < 1:
                raise DataError(f"{where}: line {line!r} is not 'IMAGE CLASS-ID …' (ids from 1).")
            label = int(parts[1]) - 1
            # torchvision's class names: the image name without its number, in title case
            name = " ".join(w.title() for w in parts[0].rsplit("_", 1)[0].split("_"))
            if names.setdefault(label, name) != name:
                raise DataError(
                    f"{where}: class {label + 1} is both {names[label]!r} and {name!r}."
                )
            paths.append(_inside(base / "images", f"{parts[0]}.jpg", where))
            y.append(label)
        arrays[split] = (_read_images(paths, size), np.array(y, dtype=np.int64))
    k = check_dense_labels([y for _, y in arrays.values()], "oxford-pets")
    return arrays, [names[c] for c in range(k)], "official trainval (3680) / test (3669)"


# --------------------------------------------------------------------------- the table
_CIFAR10_BATCHES = {
    "train": [f"data_batch_{i}.bin" for i in range(1, 6)],
    "test": ["test_batch.bin"],
}
_CIFAR100_BATCHES = {"train": ["train.bin"], "test": ["test.bin"]}
_CIFAR_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
_TORONTO = "https://www.cs.toronto.edu/~kriz/"

SETS: dict[str, _Set] = {
    s.name: s
    for s in (
        _Set(
            name="cifar10",
            title="CIFAR-10",
            help="CIFAR-10: 10 classes, 50k/10k colour 32x32 images (downloaded once)",
            size=32,
            native=True,
            folder="",
            needs=tuple(
                f"cifar-10-batches-bin/{f}" for fs in _CIFAR10_BATCHES.values() for f in fs
            ),
            files="cifar-10-binary.tar.gz",
            page=_CIFAR_PAGE,
            megabytes=162,
            download=partial(
                _download_archive,
                _TORONTO + "cifar-10-binary.tar.gz",
                "c32a1d4ab5d03f1284b67883e8d87530",
            ),
            read=partial(
                _read_cifar, "cifar-10-batches-bin", _CIFAR10_BATCHES, 1, CIFAR10_CLASSES, "cifar10"
            ),
        ),
        _Set(
            name="cifar100",
            title="CIFAR-100",
            help="CIFAR-100: 100 classes, 50k/10k colour 32x32 images (downloaded once)",
            size=32,
            native=True,
            folder="",
            needs=tuple(f"cifar-100-binary/{f}" for fs in _CIFAR100_BATCHES.values() for f in fs),
            files="cifar-100-binary.tar.gz",
            page=_CIFAR_PAGE,
            megabytes=161,
            download=partial(
                _download_archive,
                _TORONTO + "cifar-100-binary.tar.gz",
                "03b5dce01913d631647c71ecec9e9cb8",
            ),
            read=partial(
                _read_cifar, "cifar-100-binary", _CIFAR100_BATCHES, 2, CIFAR100_CLASSES, "cifar100"
            ),
        ),
        _Set(
            name="svhn",
            title="SVHN",
            help="SVHN: 10 digits, 73k/26k colour 32x32 house-number crops (downloaded once)",
            size=32,
            native=True,
            folder="",
            needs=tuple(_SVHN_FILES.values()),
            files="train_32x32.mat and test_32x32.mat",
            page="http://ufldl.stanford.edu/housenumbers/",
            megabytes=246,
            download=_download_svhn,
            read=_read_svhn,
        ),
        _Set(
            name="gtsrb",
            title="GTSRB",
            help="GTSRB: 43 traffic signs, 39k/12.6k colour images resized to 32x32",
            size=32,
            native=False,
            folder="gtsrb",
            needs=(
                "gtsrb/GTSRB/Training",
                "gtsrb/GTSRB/Final_Test/Images",
                "gtsrb/GT-final_test.csv",
            ),
            files="GTSRB-Training_fixed.zip, GTSRB_Final_Test_Images.zip and "
            "GTSRB_Final_Test_GT.zip",
            page="https://benchmark.ini.rub.de/gtsrb_dataset.html",
            megabytes=350,
            download=_download_gtsrb,
            read=_read_gtsrb,
        ),
        _Set(
            name="flowers102",
            title="Oxford Flowers-102",
            help="Oxford Flowers-102: 102 classes, 1020 train/1020 val/6149 test, resized to "
            "128x128",
            size=128,
            native=False,
            folder="flowers-102",
            needs=("flowers-102/jpg", "flowers-102/imagelabels.mat", "flowers-102/setid.mat"),
            files="102flowers.tgz, imagelabels.mat and setid.mat",
            page="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
            megabytes=330,
            download=_download_flowers,
            read=_read_flowers,
        ),
        _Set(
            name="dtd",
            title="DTD (Describable Textures)",
            help="DTD: 47 textures, 1880 train/1880 val/1880 test (partition 1), resized to "
            "128x128",
            size=128,
            native=False,
            folder="dtd",
            needs=(
                "dtd/dtd/images",
                "dtd/dtd/labels/train1.txt",
                "dtd/dtd/labels/val1.txt",
                "dtd/dtd/labels/test1.txt",
            ),
            files="dtd-r1.0.1.tar.gz",
            page="https://www.robots.ox.ac.uk/~vgg/data/dtd/",
            megabytes=625,
            download=_download_dtd,
            read=_read_dtd,
        ),
        _Set(
            name="eurosat",
            title="EuroSAT (RGB)",
            help="EuroSAT RGB: 10 land-use classes, 27k 64x64 satellite images, fixed 20% test "
            "split",
            size=64,
            native=True,
            folder="eurosat",
            needs=("eurosat/2750",),
            files="EuroSAT.zip",
            page="https://github.com/phelber/eurosat",
            megabytes=94,
            download=_download_eurosat,
            read=_read_eurosat,
        ),
        _Set(
            name="oxford-pets",
            title="Oxford-IIIT Pet",
            help="Oxford-IIIT Pet: 37 breeds, 3680 trainval/3669 test, resized to 128x128",
            size=128,
            native=False,
            folder="oxford-iiit-pet",
            needs=(
                "oxford-iiit-pet/images",
                "oxford-iiit-pet/annotations/trainval.txt",
                "oxford-iiit-pet/annotations/test.txt",
            ),
            files="images.tar.gz and annotations.tar.gz",
            page="https://www.robots.ox.ac.uk/~vgg/data/pets/",
            megabytes=790,
            download=_download_pets,
            read=_read_pets,
        ),
    )
}


# --------------------------------------------------------------------------- loading
def _absent(spec: _Set, root: Path, missing: list[str], error: BaseException | None) -> str:
    """The one-paragraph message for a set that is not on disk and could not be fetched."""
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    why = (
        f"downloading it failed ({type(error).__name__}: {_one_line(error)})"
        if error is not None
        else "downloading is off (#download=false)"
    )
    by_hand = "" if error is not None else " (without #download=false)"
    return (
        f"{spec.title} ({spec.name}) is not in {root}: {root / missing[0]} is missing{more}, "
        f"and {why}. It needs internet access once (about {spec.megabytes} MB, fetched by "
        f"torchvision and checked against its MD5 sum); after that it is read from {root} "
        f"offline. Without internet, put {spec.files} (from {spec.page}) into "
        f"{root / spec.folder} by hand and run again{by_hand}: torchvision then checks and "
        f"unpacks what it finds there instead of downloading. Or point {spec.name}#root=DIR "
        f"or ${DATA_ENV} at a folder that already holds the set in torchvision's layout."
    )


def _fetch(spec: _Set, root: Path, options: TorchvisionOptions) -> str:
    """Make sure ``spec``'s files are under ``root`` (downloading if allowed); where from."""
    missing = [p for p in spec.needs if not (root / p).exists()]
    if not missing:
        return str(root)
    if not options.download:
        raise DataError(_absent(spec, root, missing, None))
    try:
        spec.download(root)
    except ImportError as exc:
        raise DataError(
            f"{spec.name} is downloaded by torchvision, which is not installed ({exc}); install "
            "the `vision` extra (pip install 'reprogram[vision]')."
        ) from None
    except Exception as exc:  # noqa: BLE001 (network, checksum and archive errors vary)
        raise DataError(_absent(spec, root, missing, exc)) from None
    still = [p for p in spec.needs if not (root / p).exists()]
    if still:
        raise DataError(
            f"{spec.title}: torchvision's download into {root} finished, but {root / still[0]} "
            f"is still missing; delete {root / spec.folder} and run again."
        )
    return f"{root} (downloaded by torchvision)"


def load_torchvision_set(name: str, options: TorchvisionOptions | None = None) -> TargetData:
    """The set ``name`` (a key of :data:`SETS`) with its own splits: ``x`` float32
    ``[N, 3, S, S]`` in ``[0, 1]``, ``y`` int64 ``[N]``; ``val`` given where the set has one."""
    spec = SETS[name]
    options = options or TorchvisionOptions()
    root = data_root(options.root)
    size = options.size or spec.size
    origin = _fetch(spec, root, options)
    arrays, classes, split_info = spec.read(root, size)
    splits: dict[str, Split] = {
        s: make_split(x, y, f"{name} {s} split ({root})") for s, (x, y) in arrays.items()
    }
    for s in ("test", "val"):
        if s in splits:
            check_label_sets(splits["train"].y, splits[s].y, f"{name} {s} split ({root})")
    shape = f"{size}x{size}, " + (
        "native" if spec.native and size == spec.size else "squashed to a square (bilinear)"
    )
    return TargetData(
        name=name,
        train=splits["train"],
        test=splits["test"],
        val=splits.get("val"),
        class_names=classes,
        info={
            "source": origin,
            "split": split_info,
            "channels": "3 (RGB)",
            "image_size": shape,
        },
    )


for _spec in SETS.values():
    TARGETS.register(_spec.name, help=_spec.help, config=TorchvisionOptions, tags=("image",))(
        partial(load_torchvision_set, _spec.name)
    )
