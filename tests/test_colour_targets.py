"""The torchvision colour targets (``cifar10`` … ``oxford-pets``), offline.

Every test runs with the network blocked (any connection attempt raises and is counted) and
with ``$REPROGRAM_TORCHVISION_DATA`` pointing at a temporary folder, where tiny stand-ins are
written in the on-disk layout torchvision leaves after its download: CIFAR's binary batches,
SVHN's ``.mat`` files (``scipy.io.savemat``), and image folders with split files.
"""

from __future__ import annotations

import shutil
import socket
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from reprogram.cli import main
from reprogram.data import TARGETS, load_target
from reprogram.data import torchvision_sets as tvs
from reprogram.data.splits import prepare_splits
from reprogram.errors import DataError, ReprogramError

NAMES = ["cifar10", "cifar100", "svhn", "gtsrb", "flowers102", "dtd", "eurosat", "oxford-pets"]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """No network for any test (each attempt is recorded, then refused); the data root and
    the cache are temporary folders."""
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(repr(args[:2]))
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("REPROGRAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(tvs.DATA_ENV, str(tmp_path / "data"))
    return attempts


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The data root of the test (``$REPROGRAM_TORCHVISION_DATA``)."""
    return tmp_path / "data"


# --------------------------------------------------------------------------- stand-ins
def _image(path: Path, rgb: tuple[int, int, int], width: int, height: int) -> None:
    """A solid-colour image file (format from the suffix: .jpg, .ppm, .png)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), rgb).save(path)


def _cifar_planes(label: int) -> np.ndarray:
    """One CIFAR image as stored, ``[3, 32, 32]`` uint8: red = row index, green = 10·label,
    blue = 200 (so a test can see rows, channels and the label in the pixels)."""
    planes = np.empty((3, 32, 32), dtype=np.uint8)
    planes[0] = np.arange(32, dtype=np.uint8)[:, None]
    planes[1] = 10 * label
    planes[2] = 200
    return planes


def make_cifar10(root: Path) -> None:
    """``cifar-10-batches-bin``: 5 train batches and a test batch, each one image per class."""
    base = root / "cifar-10-batches-bin"
    base.mkdir(parents=True)
    records = b"".join(bytes([c]) + _cifar_planes(c).tobytes() for c in range(10))
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (base / name).write_bytes(records)
    (base / "batches.meta.txt").write_text("\n".join(tvs.CIFAR10_CLASSES) + "\n")


def make_cifar100(root: Path) -> None:
    """``cifar-100-binary``: train 2 and test 1 image per fine class (coarse byte first)."""
    base = root / "cifar-100-binary"
    base.mkdir(parents=True)

    def records(copies: int) -> bytes:
        one = [bytes([c // 5, c]) + _cifar_planes(c % 25).tobytes() for c in range(100)]
        return b"".join(one * copies)

    (base / "train.bin").write_bytes(records(2))
    (base / "test.bin").write_bytes(records(1))


def make_svhn(root: Path) -> None:
    """``train_32x32.mat`` (20 crops) and ``test_32x32.mat`` (10): X ``[32, 32, 3, N]`` uint8,
    y ``[N, 1]`` with the digit 0 labelled 10, as SVHN stores them."""
    root.mkdir(parents=True, exist_ok=True)
    for name, n in (("train_32x32.mat", 20), ("test_32x32.mat", 10)):
        digits = np.arange(n) % 10
        x = np.empty((32, 32, 3, n), dtype=np.uint8)
        x[:, :, 0] = np.arange(32, dtype=np.uint8)[:, None, None]  # red = row index
        x[:, :, 1] = (10 * digits).astype(np.uint8)
        x[:, :, 2] = 200
        y = np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]
        savemat(root / name, {"X": x, "y": y})


def make_gtsrb(root: Path) -> None:
    """3 sign classes of .ppm images of different sizes; the test table as GTSRB's."""
    base = root / "gtsrb"
    for c in range(3):
        for i in range(2):
            path = base / "GTSRB" / "Training" / f"{c:05d}" / f"00000_{i:05d}.ppm"
            _image(path, (80 * c, 50, 50), 30 + 5 * i, 40)
        (base / "GTSRB" / "Training" / f"{c:05d}" / f"GT-{c:05d}.csv").write_text("ignored\n")
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i, c in enumerate([2, 0, 1, 1]):
        _image(base / "GTSRB" / "Final_Test" / "Images" / f"{i:05d}.ppm", (80 * c, 50, 50), 45, 37)
        rows.append(f"{i:05d}.ppm;45;37;5;5;40;32;{c}")
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")


def make_flowers102(root: Path) -> None:
    """9 jpgs of 3 classes, ``imagelabels.mat`` (1-based labels) and ``setid.mat``."""
    base = root / "flowers-102"
    labels = np.array([1, 2, 3, 1, 2, 3, 3, 2, 1], dtype=np.uint8)
    for i, label in enumerate(labels, start=1):
        _image(base / "jpg" / f"image_{i:05d}.jpg", (70 * int(label), 90, 30), 50, 40)
    savemat(base / "imagelabels.mat", {"labels": labels[None, :]})
    savemat(
        base / "setid.mat",
        {
            "trnid": np.array([[1, 2, 3]], dtype=np.uint16),
            "valid": np.array([[4, 5, 6]], dtype=np.uint16),
            "tstid": np.array([[7, 8, 9]], dtype=np.uint16),
        },
    )


DTD_CLASSES = ["banded", "bubbly", "zigzagged"]


def make_dtd(root: Path) -> None:
    """3 textures, one image per class in each of train1/val1/test1.txt."""
    base = root / "dtd" / "dtd"
    for split in ("train", "val", "test"):
        lines = []
        for c, name in enumerate(DTD_CLASSES):
            rel = f"{name}/{name}_{split}.jpg"
            _image(base / "images" / rel, (60 * c, 120, 200), 64 + 7 * c, 48)
            lines.append(rel)
        (base / "labels").mkdir(parents=True, exist_ok=True)
        (base / "labels" / f"{split}1.txt").write_text("\n".join(lines) + "\n")


EUROSAT_FOLDERS = ["AnnualCrop", "Forest", "SeaLake"]


def make_eurosat(root: Path) -> None:
    """``eurosat/2750/<Class>/*.jpg``: 5 images of 64×64 per class."""
    for c, name in enumerate(EUROSAT_FOLDERS):
        for i in range(5):
            _image(root / "eurosat" / "2750" / name / f"{name}_{i}.jpg", (80 * c, 40, 90), 64, 64)


PET_IMAGES = {  # image id → class id (1-based), as in trainval.txt / test.txt
    "trainval": {"Abyssinian_1": 1, "american_bulldog_1": 2, "Bengal_1": 3, "Abyssinian_2": 1},
    "test": {"Abyssinian_3": 1, "american_bulldog_2": 2, "Bengal_2": 3},
}


def make_oxford_pets(root: Path) -> None:
    """3 breeds: images and the two annotation lists ('IMAGE CLASS-ID SPECIES BREED-ID')."""
    base = root / "oxford-iiit-pet"
    for split, images in PET_IMAGES.items():
        lines = []
        for image_id, c in images.items():
            _image(base / "images" / f"{image_id}.jpg", (60 * c, 60, 60), 33, 51)
            lines.append(f"{image_id} {c} {1 + c % 2} {c}")
        (base / "annotations").mkdir(parents=True, exist_ok=True)
        (base / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")


MAKERS: dict[str, Callable[[Path], None]] = {
    "cifar10": make_cifar10,
    "cifar100": make_cifar100,
    "svhn": make_svhn,
    "gtsrb": make_gtsrb,
    "flowers102": make_flowers102,
    "dtd": make_dtd,
    "eurosat": make_eurosat,
    "oxford-pets": make_oxford_pets,
}
#: name → (side, class names, {split: examples}); val only where the set defines one.
EXPECTED: dict[str, tuple[int, list[str], dict[str, int]]] = {
    "cifar10": (32, tvs.CIFAR10_CLASSES, {"train": 50, "test": 10}),
    "cifar100": (32, tvs.CIFAR100_CLASSES, {"train": 200, "test": 100}),
    "svhn": (32, [str(d) for d in range(10)], {"train": 20, "test": 10}),
    "gtsrb": (32, tvs.GTSRB_CLASSES[:3], {"train": 6, "test": 4}),
    "flowers102": (
        128,
        ["pink primrose", "hard-leaved pocket orchid", "canterbury bells"],
        {"train": 3, "val": 3, "test": 3},
    ),
    "dtd": (128, DTD_CLASSES, {"train": 3, "val": 3, "test": 3}),
    "eurosat": (64, ["annual crop", "forest", "sea lake"], {"train": 12, "test": 3}),
    "oxford-pets": (128, ["Abyssinian", "American Bulldog", "Bengal"], {"train": 4, "test": 3}),
}


# --------------------------------------------------------------------------- loading
@pytest.mark.parametrize("name", NAMES)
def test_reads_a_stand_in_in_torchvisions_layout(name: str, root: Path, offline: list[str]) -> None:
    MAKERS[name](root)
    data = load_target(name)
    side, classes, sizes = EXPECTED[name]
    assert data.name == name and data.modality == "image" and data.task == "classification"
    assert data.class_names == classes
    splits = {"train": data.train, "test": data.test}
    if data.val is not None:
        splits["val"] = data.val
    assert {s: len(split) for s, split in splits.items()} == sizes
    for split in splits.values():
        assert split.x.dtype == torch.float32 and split.x.shape[1:] == (3, side, side)
        assert 0.0 <= float(split.x.min()) and float(split.x.max()) <= 1.0
        assert split.y.dtype == torch.int64
        assert set(split.y.tolist()) <= set(range(len(classes)))
    assert set(data.train.y.tolist()) == set(range(len(classes)))
    assert data.info["source"] == str(root) and data.info["channels"] == "3 (RGB)"
    assert data.info["image_size"].startswith(f"{side}x{side}, ")
    assert offline == []  # on disk already: nothing tried the network


def test_cifar_binary_records_keep_rows_channels_and_labels(root: Path) -> None:
    make_cifar10(root)
    data = load_target("cifar10")
    x, y = data.train.x, data.train.y
    assert y.tolist() == list(range(10)) * 5
    rows = torch.arange(32, dtype=torch.float32)[:, None].expand(32, 32) / 255
    assert torch.equal(x[3, 0], rows)  # red plane: the row index, rows first
    assert torch.allclose(x[:, 1, 5, 5], (10 * y).float() / 255)  # green: 10 x label
    assert torch.allclose(x[:, 2], torch.full_like(x[:, 2], 200 / 255))


def test_cifar100_uses_the_fine_label(root: Path) -> None:
    make_cifar100(root)
    data = load_target("cifar100")
    assert data.test.y.tolist() == list(range(100))
    assert data.class_names[1] == "aquarium fish" and len(data.class_names) == 100


def test_svhn_reads_the_mat_layout_and_relabels_zero(root: Path) -> None:
    make_svhn(root)
    data = load_target("svhn")
    assert data.train.y.tolist() == [i % 10 for i in range(20)]  # label 10 is the digit 0
    rows = torch.arange(32, dtype=torch.float32)[:, None].expand(32, 32) / 255
    assert torch.equal(data.test.x[7, 0], rows)
    assert torch.allclose(data.test.x[:, 1, 0, 0], (10 * data.test.y).float() / 255)


def test_folder_sets_keep_label_order_and_colour(root: Path) -> None:
    make_gtsrb(root)
    data = load_target("gtsrb")
    assert data.test.y.tolist() == [2, 0, 1, 1]  # the table's order and ClassId
    assert data.class_names[0] == "speed limit 20 km/h"
    red = data.test.x[:, 0].mean(dim=(1, 2))
    assert torch.allclose(red, (80 * data.test.y).float() / 255, atol=1 / 255)
    assert data.info["image_size"] == "32x32, squashed to a square (bilinear)"


def test_given_val_split_is_kept_and_missing_one_is_carved(root: Path) -> None:
    make_flowers102(root)
    flowers = prepare_splits(load_target("flowers102"), seed=0)
    assert torch.equal(flowers.val.y, torch.tensor([0, 1, 2]))  # setid.mat's "valid"
    make_eurosat(root)
    eurosat = load_target("eurosat")
    assert eurosat.val is None
    assert "fixed stratified 20% test split" in eurosat.info["split"]
    prepared = prepare_splits(eurosat, val_fraction=0.25, seed=0)
    assert len(prepared.train) + len(prepared.val) == 12 and len(prepared.val) == 3
    assert load_target("eurosat").test.y.tolist() == eurosat.test.y.tolist()  # fixed split


def test_size_and_root_options(root: Path, tmp_path: Path) -> None:
    make_svhn(root)
    assert load_target("svhn#size=16").train.x.shape[1:] == (3, 16, 16)
    elsewhere = tmp_path / "elsewhere"
    make_dtd(elsewhere)
    data = load_target(f"dtd#root={elsewhere}#size=24")
    assert data.train.x.shape[1:] == (3, 24, 24)
    assert data.info["source"] == str(elsewhere)
    for bad in ("svhn#size=-1", "svhn#size=5000", "svhn#colour=yes"):
        with pytest.raises(ReprogramError):
            load_target(bad)


# --------------------------------------------------------------------------- offline failure
@pytest.mark.parametrize("name", NAMES)
def test_offline_and_absent_is_one_clear_data_error(
    name: str, root: Path, offline: list[str]
) -> None:
    with pytest.raises(DataError) as caught:
        load_target(name)
    message = str(caught.value)
    spec = tvs.SETS[name]
    assert offline, "the download was not even tried"
    assert "\n" not in message
    assert message.startswith(f"{spec.title} ({name}) is not in {root}: ")
    assert "downloading it failed" in message and "network disabled in tests" in message
    assert "needs internet access once" in message
    assert f"into {root / spec.folder} by hand" in message and tvs.DATA_ENV in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_download_false_never_touches_the_network(root: Path, offline: list[str]) -> None:
    with pytest.raises(DataError, match="downloading is off") as caught:
        load_target("cifar100#download=false")
    assert offline == []
    assert str(root / "cifar-100-binary" / "train.bin") in str(caught.value)
    assert "(without #download=false)" in str(caught.value)


def test_fit_offline_ends_in_the_message_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["fit", "--target", "oxford-pets", "--source", "tiny-random-cnn", "--epochs", "1"]
    code = main([*argv, "--quiet", "--no-plots", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "Oxford-IIIT Pet (oxford-pets) is not in" in err and "internet" in err


def test_a_download_is_checked_unpacked_and_then_read(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torchvision's download step replaced by a copy of a local archive: what it unpacks
    is read, and the next load finds it on disk."""
    from torchvision.datasets import utils as tv_utils

    make_cifar10(tmp_path / "made")
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "made" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    fetched: list[tuple[str, str | None]] = []

    def fake_download(url: str, into: str, filename: str | None = None, md5: str | None = None):
        fetched.append((url, md5))
        Path(into).mkdir(parents=True, exist_ok=True)
        shutil.copy(archive, Path(into) / (filename or Path(url).name))

    monkeypatch.setattr(tv_utils, "download_url", fake_download)
    data = load_target("cifar10")
    assert fetched == [
        (
            "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            "c32a1d4ab5d03f1284b67883e8d87530",
        )
    ]
    assert data.info["source"] == f"{root} (downloaded by torchvision)" and len(data.test) == 10
    assert load_target("cifar10").info["source"] == str(root) and len(fetched) == 1


# --------------------------------------------------------------------------- bad files
def test_bad_files_are_data_errors_naming_them(root: Path) -> None:
    make_cifar10(root)
    batch = root / "cifar-10-batches-bin" / "test_batch.bin"
    batch.write_bytes(batch.read_bytes()[:-5])
    with pytest.raises(DataError, match="not a whole number of 3073-byte records"):
        load_target("cifar10")

    make_svhn(root)
    (root / "test_32x32.mat").write_bytes(b"not a MATLAB file" * 10)
    with pytest.raises(DataError, match=r"test_32x32\.mat as a MATLAB file"):
        load_target("svhn")

    make_dtd(root)
    (root / "dtd" / "dtd" / "labels" / "test1.txt").write_text("banded/../../../../etc/passwd\n")
    with pytest.raises(DataError, match="is not a file name under"):
        load_target("dtd")

    make_oxford_pets(root)
    (root / "oxford-iiit-pet" / "images" / "Bengal_2.jpg").write_bytes(b"\xff\xd8broken")
    with pytest.raises(DataError, match=r"Bengal_2\.jpg"):
        load_target("oxford-pets")


def test_nothing_is_unpickled(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle.load called")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    for name in NAMES:
        MAKERS[name](root)
        load_target(name)


# --------------------------------------------------------------------------- listing
def test_list_targets_shows_each_with_one_line_of_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "targets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in NAMES:
        row = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
        assert lines[row][len(name) :].strip() == TARGETS.lookup(name).help + " [image]"
        assert lines[row + 1].split() == ["options:", "root,", "size,", "download"]

    assert main(["list", "targets", "flowers102"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowers102: Oxford Flowers-102: 102 classes")
    assert "  size  (int, default 0)" in out and "  download  (bool, default True)" in out


def test_help_and_messages_stay_short() -> None:
    for spec in tvs.SETS.values():
        assert "\n" not in spec.help and len(spec.help) <= 90, spec.name
    message = tvs._absent(tvs.SETS["dtd"], Path("/r"), ["dtd/dtd/images"], OSError("x\ny"))
    assert "\n" not in message and "(OSError: x y)" in message
