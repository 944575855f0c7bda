"""``folder:PATH``: a target task as image files, one folder per class.

Layouts: ``PATH/train/<class>/*.png`` with ``PATH/test/<class>/…`` (and optionally
``PATH/val/<class>/…``), or just ``PATH/<class>/…``, in which case a fixed stratified 20% is
held out as the test split (its own seed 0). Classes are the sorted folder names of the
training split (index = position). All-grey images give ``C = 1``; if any image has colour,
all become RGB (``C = 3``). Every image must have the same size.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from . import TARGETS
from .base import Split, TargetData
from .checks import check_image_size, check_label_sets, make_split
from .splits import holdout_split

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
TEST_FRACTION = 0.2
SPLIT_SEED = 0
_GREY_MODES = {"1", "L", "LA", "I", "F"}


@dataclass
class _Image:
    """One decoded image: ``pixels`` float32 ``[H, W]`` (grey) or ``[H, W, 3]`` in ``[0, 1]``."""

    path: Path
    pixels: np.ndarray
    label: int


def _subdirs(path: Path) -> list[Path]:
    """Visible sub-folders of ``path``, sorted by name."""
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(class_dir: Path) -> list[Path]:
    """Image files (by extension) directly in ``class_dir``, sorted; DataError if none."""
    files = sorted(
        p
        for p in class_dir.iterdir()
        if p.is_file() and p.suffix.lower() in EXTENSIONS and not p.name.startswith(".")
    )
    nested = [p.name for p in _subdirs(class_dir)]
    if nested:  # images one level deeper would be silently left out
        raise DataError(
            f"class folder {class_dir} holds sub-folders ({', '.join(nested[:3])}); a class "
            "folder holds its images directly: move them up, or make each sub-folder a class."
        )
    if not files:
        raise DataError(
            f"class folder {class_dir} holds no images ({', '.join(sorted(EXTENSIONS))}); "
            "remove it or add images."
        )
    return files


def _pixels(im: Image.Image) -> np.ndarray:
    """``[H, W]`` for grey modes, ``[H, W, 3]`` otherwise; float32 in ``[0, 1]``."""
    if im.mode.startswith("I;16"):
        return np.asarray(im, dtype=np.float32) / 65535.0
    if im.mode == "I":  # 32-bit int; how Pillow gives 16-bit greys in some versions
        return np.clip(np.asarray(im, dtype=np.float32) / 65535.0, 0.0, 1.0)
    if im.mode == "F":
        return np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
    if im.mode in _GREY_MODES:
        return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    if im.mode == "P" and (rgb == rgb[:, :, :1]).all():  # a palette of greys (common in GIFs)
        return np.ascontiguousarray(rgb[:, :, 0])
    return rgb


def _read_image(path: Path, label: int) -> _Image:
    """Decode ``path``; DataError naming it if it is not a readable image."""
    return _Image(path, decode_image(path, _pixels), label)


def decode_image(path: Path, convert: Callable[[Image.Image], np.ndarray]) -> np.ndarray:
    """``convert`` of the image at ``path``, refused (DataError) above
    :data:`~reprogram.data.checks.MAX_IMAGE_PIXELS` from its header, before decoding."""
    try:
        with Image.open(path) as im:
            check_image_size(im.width, im.height, str(path))
            im.load()
            return convert(im)
    except Image.DecompressionBombError as exc:  # Pillow's own guard, at open
        raise DataError(
            f"{path}: {exc}; resize the image first, e.g. to the size the model takes."
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, MemoryError) as exc:
        raise DataError(f"cannot read image {path} ({exc}); fix or remove that file.") from None


def _read_classes(root: Path, classes: list[str]) -> list[_Image]:
    """All images under ``root/<class>/`` for the given class folders (labels = positions)."""
    images = []
    for label, name in enumerate(classes):
        images += [_read_image(p, label) for p in _image_files(root / name)]
    return images


def _class_folders(root: Path) -> list[str]:
    """Sorted class folder names of ``root``; DataError if it has none."""
    names = [p.name for p in _subdirs(root)]
    if not names:
        raise DataError(
            f"{root} has no class folders; expected {root}/<class>/*.png (one folder per class), "
            "or train/ and test/ folders each holding class folders."
        )
    return names


def _check_sizes(images: list[_Image]) -> None:
    """All images must share one size; DataError naming two files that differ."""
    first = images[0]
    for im in images[1:]:
        if im.pixels.shape[:2] != first.pixels.shape[:2]:
            h0, w0 = first.pixels.shape[:2]
            h1, w1 = im.pixels.shape[:2]
            raise DataError(
                f"images have different sizes: {first.path} is {w0}x{h0} but {im.path} is "
                f"{w1}x{h1} (width x height); resize them to one size first."
            )


def _to_split(images: list[_Image], colour: bool, where: str) -> Split:
    """Stack images into a :class:`Split` (``x`` ``[N, C, H, W]``, ``C = 3`` if ``colour``)."""
    arrays = []
    for im in images:
        px = im.pixels
        if colour and px.ndim == 2:
            px = np.repeat(px[:, :, None], 3, axis=2)
        arrays.append(px)
    y = np.array([im.label for im in images], dtype=np.int64)
    return make_split(np.stack(arrays), y, where)


def _load_two_level(root: Path) -> tuple[dict[str, list[_Image]], list[str]]:
    """``root/{train,test[,val]}/<class>/…``: images per split and the class names."""
    if not (root / "test").is_dir():
        raise DataError(f"{root} has a train/ folder but no test/ folder next to it.")
    classes = _class_folders(root / "train")
    out = {}
    for split in ("train", "test", "val"):
        if split == "val" and not (root / "val").is_dir():
            continue
        names = _class_folders(root / split)
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise DataError(
                f"{root / split} has class folder(s) {', '.join(unknown)} that {root / 'train'} "
                "lacks; every class needs training images."
            )
        out[split] = _read_classes(root / split, names)
        index = {name: classes.index(name) for name in names}
        for im in out[split]:
            im.label = index[names[im.label]]
    return out, classes


def _load_one_level(root: Path) -> tuple[dict[str, list[_Image]], list[str]]:
    """``root/<class>/…``: a fixed stratified test split is held out."""
    classes = _class_folders(root)
    images = _read_classes(root, classes)
    labels = torch.tensor([im.label for im in images])
    keep, held = holdout_split(labels, TEST_FRACTION, SPLIT_SEED)
    if len(held) == 0:
        raise DataError(
            f"{root}: every class has a single image, too few to hold out a test split; add "
            "images or give train/ and test/ folders."
        )
    return {"train": [images[i] for i in keep], "test": [images[i] for i in held]}, classes


@TARGETS.register(
    "folder:",
    help="DIR of images: DIR/train/<class>/*.png and DIR/test/<class>/*.png, "
    "or DIR/<class>/*.png (20% held out as test)",
    prefix=True,
)
def folder(rest: str) -> TargetData:
    """Images under ``rest`` (a folder) as ``x`` float32 ``[N, C, H, W]`` in ``[0, 1]``."""
    root = Path(rest).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist (or is not a folder).")
    two_level = (root / "train").is_dir()
    images, classes = (_load_two_level if two_level else _load_one_level)(root)
    everything = [im for split in images.values() for im in split]
    _check_sizes(everything)
    colour = any(im.pixels.ndim == 3 for im in everything)
    splits = {s: _to_split(ims, colour, f"{root}, {s} split") for s, ims in images.items()}
    for s in ("test", "val"):
        if s in splits:
            check_label_sets(splits["train"].y, splits[s].y, f"{root}, {s} split")
    split_info = (
        "given train/ and test/ folders" + (" and val/" if "val" in splits else "")
        if two_level
        else f"no train/test folders; fixed stratified {TEST_FRACTION:.0%} test split "
        f"(seed {SPLIT_SEED}, independent of the run seed)"
    )
    return TargetData(
        name=f"folder:{rest}",
        train=splits["train"],
        test=splits["test"],
        val=splits.get("val"),
        class_names=classes,
        info={"source": str(root), "split": split_info, "channels": "3 (RGB)" if colour else "1"},
    )
