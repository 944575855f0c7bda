"""``folder:PATH``: a target task as image files, one folder per class.

Layouts: ``PATH/train/<class>/*.png`` with ``PATH/test/<class>/…`` (and optionally
``PATH/val/<class>/…``), or just ``PATH/<class>/…``, in which case a fixed stratified 20% is
held out as the test split (its own seed 0). Classes are the sorted folder names of the
training split (index = position). All-grey images give ``C = 1``; if any image has colour,
all become RGB (``C = 3``). Every image must have the same size, unless ``folder:PATH#size=S``
resizes each to ``S × S`` (bilinear, antialiased; the aspect ratio is not kept).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import DataError
from ..registry import hash_options, options_config
from . import TARGETS
from .base import Split, TargetData, portable_name
from .checks import check_image_size, check_label_sets, make_split
from .splits import holdout_split

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
TEST_FRACTION = 0.2
SPLIT_SEED = 0
_GREY_MODES = {"1", "L", "LA", "I", "F"}
MAX_SIZE = 1024


@dataclass
class FolderOptions:
    """Options of an image folder target (``folder:PATH#size=128``)."""

    size: int = field(
        default=0,
        metadata={"help": "resize every image to size x size (0: keep; all must then match)"},
    )

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_SIZE:
            raise ValueError(f"size must be 0 (keep) or 1 … {MAX_SIZE}, got {self.size!r}")


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


def _check_sizes(images: list[_Image], root: Path) -> None:
    """All images must share one size; DataError naming two files that differ and the
    ``#size`` option that would resize them."""
    first = images[0]
    for im in images[1:]:
        if im.pixels.shape[:2] != first.pixels.shape[:2]:
            h0, w0 = first.pixels.shape[:2]
            h1, w1 = im.pixels.shape[:2]
            (h, w), n = Counter(i.pixels.shape[:2] for i in images).most_common(1)[0]
            raise DataError(
                f"images have different sizes: {first.path} is {w0}x{h0} but {im.path} is "
                f"{w1}x{h1} (width x height). Give folder:{root}#size=S to resize every image "
                f"to S x S (the most common size here is {w}x{h}, {n} of {len(images)} "
                "images), or resize them to one size first."
            )


def _resize(images: list[_Image], size: int) -> None:
    """Every image's pixels squashed to ``size x size`` in place (bilinear, antialiased)."""
    for im in images:
        if im.pixels.shape[:2] == (size, size):
            continue
        t = torch.from_numpy(np.ascontiguousarray(im.pixels))
        t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
        out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                            antialias=True).clamp_(0.0, 1.0)[0]
        im.pixels = (out[0] if im.pixels.ndim == 2 else out.permute(1, 2, 0)).numpy()


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
    "or DIR/<class>/*.png (20% held out as test); #size=S resizes every image to S x S",
    prefix=True,
    config=FolderOptions,
    tags=("image",),
)
def folder(rest: str) -> TargetData:
    """Images under ``rest`` (a folder, then ``#size=S``) as ``x`` float32 ``[N, C, H, W]`` in
    ``[0, 1]``."""
    head = rest.split("#", 1)[0]
    options: FolderOptions = options_config(
        FolderOptions, hash_options(rest, rest[len(head):]), "target", f"folder:{head}",
        listed="folder:",
    )
    root = Path(head).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist (or is not a folder).")
    two_level = (root / "train").is_dir()
    images, classes = (_load_two_level if two_level else _load_one_level)(root)
    everything = [im for split in images.values() for im in split]
    if options.size:
        _resize(everything, options.size)
    _check_sizes(everything, root)
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
        portable_name=portable_name("folder", rest),
        train=splits["train"],
        test=splits["test"],
        val=splits.get("val"),
        class_names=classes,
        info={
            "source": str(root),
            "split": split_info,
            "channels": "3 (RGB)" if colour else "1",
            **({"resized": f"{options.size}x{options.size}"} if options.size else {}),
        },
    )
