"""Target data: loaders (npz, folder, digits, fashion-mnist), checks, and split preparation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reprogram.data import Split, TargetData, load_target
from reprogram.data import fashion_mnist as fashion_module
from reprogram.data.checks import check_label_sets, to_nchw_float, validate_split
from reprogram.data.splits import prepare_splits
from reprogram.errors import DataError, ReprogramError, SealedSplitError

# ---------------------------------------------------------------- helpers


def _labels(n: int, k: int = 3) -> np.ndarray:
    return np.arange(n) % k


def _save_npz(tmp_path: Path, **arrays: np.ndarray) -> str:
    path = tmp_path / "task.npz"
    np.savez(path, **arrays)
    return str(path)


def _task(tmp_path: Path, x_train: np.ndarray, x_test: np.ndarray, **extra: np.ndarray) -> str:
    arrays = {
        "x_train": x_train,
        "y_train": _labels(len(x_train)),
        "x_test": x_test,
        "y_test": _labels(len(x_test)),
    }
    arrays.update(extra)
    return _save_npz(tmp_path, **arrays)


def _png(path: Path, size: tuple[int, int] = (6, 5), mode: str = "L", value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode in ("L", "1", "I;16") else (value, 0, 255 - value, 255)[: len(mode)]
    Image.new(mode, size, colour).save(path)


def _synthetic(counts: list[int], val: Split | None = None) -> TargetData:
    """Labels with ``counts[c]`` examples of class c; ``x[i]`` holds ``i`` to trace examples."""
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    x = torch.arange(len(y), dtype=torch.float32).view(-1, 1, 1, 1)
    test = Split(torch.zeros(4, 1, 1, 1), torch.zeros(4, dtype=torch.long))
    names = [f"c{c}" for c in range(len(counts))]
    return TargetData("synthetic", Split(x, y), test, names, val=val)


def _ids(split: Split) -> list[int]:
    return split.x.flatten().long().tolist()


# ---------------------------------------------------------------- npz


@pytest.mark.parametrize(
    ("shape", "channels"),
    [((6, 5, 4), 1), ((6, 3, 5, 4), 3), ((6, 1, 5, 4), 1), ((6, 5, 4, 3), 3), ((6, 5, 4, 1), 1)],
)
def test_npz_layouts(tmp_path: Path, shape: tuple[int, ...], channels: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.random(shape).astype(np.float32)
    data = load_target("npz:" + _task(tmp_path, x, x[:3]))
    assert data.train.x.shape == (6, channels, 5, 4)
    assert data.train.x.dtype == torch.float32 and data.train.y.dtype == torch.int64
    assert data.class_names == ["0", "1", "2"]
    assert data.val is None and data.input_shape == (channels, 5, 4)
    if len(shape) == 4 and shape[3] == 3:  # channels-last is transposed, not reshaped
        assert torch.equal(data.train.x[2, 1], torch.from_numpy(x[2, :, :, 1]))


def test_npz_uint8_class_names_and_val(tmp_path: Path) -> None:
    x = np.full((6, 4, 4, 3), 255, dtype=np.uint8)
    x[0] = 0
    path = _task(
        tmp_path,
        x,
        x[:3],
        x_val=x[:3],
        y_val=np.array([0, 1, 2]),
        class_names=np.array(["cat", "dog", "eel"]),
    )
    data = load_target("npz:" + path)
    assert data.train.x.shape == (6, 3, 4, 4)
    assert data.train.x[0].max() == 0.0 and data.train.x[1].min() == 1.0
    assert data.class_names == ["cat", "dog", "eel"]
    assert data.val is not None and len(data.val) == 3


def test_npz_missing_key(tmp_path: Path) -> None:
    path = _save_npz(
        tmp_path, x_train=np.zeros((3, 4, 4)), y_train=_labels(3), x_test=np.zeros((3, 4, 4))
    )
    with pytest.raises(DataError, match=r"lacks array.*y_test"):
        load_target("npz:" + path)


def test_npz_missing_file_and_not_a_zip(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_target(f"npz:{tmp_path / 'nope.npz'}")
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(DataError, match=r"bad.npz is not a .npz file"):
        load_target(f"npz:{bad}")


def test_npz_integer_images_are_scaled_by_their_type(tmp_path: Path) -> None:
    """int64 0..255 as uint8 pixels, uint16 as 16-bit ones; wider integers are refused."""
    x = np.full((2, 4, 4), 51, dtype=np.int64)
    path = _save_npz(tmp_path, x=np.concatenate([x, x]), y=np.array([0, 1, 0, 1]))
    assert float(load_target("npz:" + path).train.x.max()) == pytest.approx(0.2)
    deep = np.full((4, 4, 4), 13107, dtype=np.uint16)
    path = _save_npz(tmp_path, x=deep, y=np.array([0, 1, 0, 1]))
    assert float(load_target("npz:" + path).train.x.max()) == pytest.approx(0.2)
    path = _save_npz(tmp_path, x=np.full((4, 4, 4), 4000, dtype=np.int32), y=np.array([0, 1] * 2))
    with pytest.raises(DataError, match=r"dtype int32 from 4000 to 4000.*uint16"):
        load_target("npz:" + path)


@pytest.mark.parametrize(("value", "message"), [(np.nan, "1 NaN"), (np.inf, "1 infinite")])
def test_npz_non_finite(tmp_path: Path, value: float, message: str) -> None:
    x = np.zeros((6, 4, 4), dtype=np.float32)
    x[2, 1, 1] = value
    with pytest.raises(DataError, match=f"train split.*{message}"):
        load_target("npz:" + _task(tmp_path, x, np.zeros_like(x[:3])))


@pytest.mark.parametrize(
    ("labels", "match"),
    [(np.array([0, 1.5, 2]), "integer classes from 0"),
     (np.array(["a", "b", "c"]), "y_train are strings but y_test are numbers")],
)
def test_bad_labels(tmp_path: Path, labels: np.ndarray, match: str) -> None:
    x = np.zeros((3, 4, 4), dtype=np.float32)
    path = _save_npz(tmp_path, x_train=x, y_train=labels, x_test=x, y_test=_labels(3))
    with pytest.raises(DataError, match=match):
        load_target("npz:" + path)


def test_npz_of_one_set_holds_out_a_fixed_stratified_test_split(tmp_path: Path) -> None:
    """Just x and y (string labels): 20% of each class held out as test with a seed of its
    own; the class names are the sorted label strings."""
    y = np.array(["eel", "cat", "dog"] * 10)
    x = np.stack([np.full((6, 6), i, np.uint8) for i in range(30)])
    path = _save_npz(tmp_path, x=x, y=y)
    data = load_target("npz:" + path)
    assert data.class_names == ["cat", "dog", "eel"]
    assert (len(data.train), len(data.test)) == (24, 6)
    assert torch.bincount(data.test.y).tolist() == [2, 2, 2]
    seen = {round(float(v) * 255) for v in torch.cat([data.train.x, data.test.x])[:, 0, 0, 0]}
    assert seen == set(range(30))  # every example once, in one split
    assert "fixed stratified 20% test split" in data.info["split"]
    again = load_target("npz:" + path)
    assert torch.equal(again.test.x, data.test.x)  # the same split every time
    one = _save_npz(tmp_path, x=x[:3], y=y[:3])
    with pytest.raises(DataError, match="every class has a single example"):
        load_target("npz:" + one)


def test_npz_string_labels_follow_class_names(tmp_path: Path) -> None:
    x = np.zeros((4, 4, 4), dtype=np.float32)
    y = np.array(["dog", "cat", "dog", "cat"])
    path = _save_npz(tmp_path, x_train=x, y_train=y, x_test=x[:2], y_test=y[:2],
                     class_names=np.array(["dog", "cat"]))
    data = load_target("npz:" + path)
    assert data.class_names == ["dog", "cat"] and data.train.y.tolist() == [0, 1, 0, 1]
    bad = _save_npz(tmp_path, x_train=x, y_train=y, x_test=x[:1], y_test=np.array(["eel"]))
    with pytest.raises(DataError, match=r"y_test holds label.*'eel'.*training labels"):
        load_target("npz:" + bad)


def test_integral_float_labels_are_fine() -> None:
    _, y = validate_split(np.zeros((3, 2, 2)), np.array([0.0, 2.0, 1.0]), "here")
    assert y.dtype == np.int64 and y.tolist() == [0, 2, 1]


def test_negative_labels_and_length_mismatch() -> None:
    with pytest.raises(DataError, match="negative"):
        validate_split(np.zeros((2, 2, 2)), np.array([0, -1]), "here")
    with pytest.raises(DataError, match="3 inputs but 2 labels"):
        validate_split(np.zeros((3, 2, 2)), np.array([0, 1]), "here")


def test_test_class_not_in_train(tmp_path: Path) -> None:
    x = np.zeros((3, 4, 4), dtype=np.float32)
    path = _save_npz(
        tmp_path, x_train=x, y_train=np.array([0, 1, 1]), x_test=x, y_test=np.array([0, 2, 1])
    )
    with pytest.raises(DataError, match=r"test split: classes 2 .*never in the training"):
        load_target("npz:" + path)
    with pytest.raises(DataError, match="val"):
        check_label_sets(np.array([0]), np.array([1]), "val")


def test_image_range_and_layout_errors() -> None:
    with pytest.raises(DataError, match=r"scale them to \[0, 1\].*uint8"):
        to_nchw_float(np.full((2, 3, 3), 255.0), "here")
    with pytest.raises(DataError, match=r"time series.*waveform"):
        to_nchw_float(np.zeros((4, 100)), "here")
    with pytest.raises(DataError, match="images must be"):
        to_nchw_float(np.zeros((4, 5, 6, 7)), "here")


# ---------------------------------------------------------------- folder


def test_folder_train_test_grey(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("test", 1)):
        for cls in ("zebra", "ant"):
            for i in range(n):
                _png(tmp_path / split / cls / f"{i}.png", value=10 if cls == "ant" else 200)
    data = load_target(f"folder:{tmp_path}")
    assert data.class_names == ["ant", "zebra"]
    assert data.train.x.shape == (6, 1, 5, 6) and data.test.x.shape == (2, 1, 5, 6)
    ant = data.train.x[data.train.y == 0]
    assert torch.allclose(ant, torch.tensor(10 / 255))
    assert "train/ and test/" in data.info["split"]


def test_folder_single_level_mixed_colour(tmp_path: Path) -> None:
    for cls in ("b", "a"):
        for i in range(5):
            mode = "RGBA" if (cls, i) == ("a", 0) else "L"
            _png(tmp_path / cls / f"{i}.png", mode=mode)
    (tmp_path / "a" / "notes.txt").write_text("ignored")
    data = load_target(f"folder:{tmp_path}")
    assert data.class_names == ["a", "b"]
    assert data.train.x.shape == (8, 3, 5, 6) and data.test.x.shape == (2, 3, 5, 6)
    assert data.test.y.tolist() == [0, 1]  # stratified: one of each class
    assert "20%" in data.info["split"] and "seed 0" in data.info["split"]
    again = load_target(f"folder:{tmp_path}")
    assert torch.equal(again.test.x, data.test.x)


def test_folder_mixed_sizes(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "0.png", size=(6, 5))
    _png(tmp_path / "a" / "1.png", size=(8, 8))
    with pytest.raises(DataError, match="resize them to one size") as err:
        load_target(f"folder:{tmp_path}")
    assert "0.png is 6x5" in str(err.value) and "1.png is 8x8" in str(err.value)


def test_folder_unreadable_image(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "0.png")
    (tmp_path / "a" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"cannot read image .*broken.png"):
        load_target(f"folder:{tmp_path}")


def test_folder_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_target(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="no class folders"):
        load_target(f"folder:{tmp_path}")
    _png(tmp_path / "a" / "0.png")
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="b holds no images"):
        load_target(f"folder:{tmp_path}")


# ---------------------------------------------------------------- built-in targets


def test_digits_fixed_split() -> None:
    data = load_target("digits")
    assert data.train.x.shape[1:] == (1, 8, 8) and data.train.x.max() == 1.0
    assert len(data.train) + len(data.test) == 1797
    assert abs(len(data.test) / 1797 - 0.3) < 0.01
    assert torch.bincount(data.test.y).min() >= 50  # stratified
    assert data.class_names == [str(k) for k in range(10)]
    assert "seed 0" in data.info["split"]
    assert torch.equal(load_target("digits").test.x, data.test.x)


def test_fashion_mnist() -> None:
    data = load_target("fashion-mnist")
    assert data.train.x.shape == (60000, 1, 28, 28) and data.test.x.shape == (10000, 1, 28, 28)
    assert (
        data.train.x.dtype == torch.float32
        and 0.0 <= data.train.x.min() < data.train.x.max() <= 1.0
    )
    assert data.class_names[0] == "T-shirt/top" and len(data.class_names) == 10
    assert torch.bincount(data.test.y).tolist() == [1000] * 10


def test_fashion_mnist_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(_root: Path) -> None:
        raise OSError("no network")

    monkeypatch.setattr(fashion_module, "DEBIAN_DIR", tmp_path)
    monkeypatch.setattr(fashion_module, "_from_torchvision", offline)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_target("fashion-mnist")


# ---------------------------------------------------------------- prepare_splits


def test_shots_come_before_validation() -> None:
    splits = prepare_splits(_synthetic([20, 30, 25]), shots=5, val_fraction=0.2, seed=3)
    assert torch.bincount(splits.train.y).tolist() == [4, 4, 4]
    assert torch.bincount(splits.val.y).tolist() == [1, 1, 1]
    assert not set(_ids(splits.train)) & set(_ids(splits.val))
    assert _ids(splits.train) == sorted(_ids(splits.train))
    assert splits.num_classes == 3 and splits.input_shape == (1, 1, 1)


def test_validation_is_stratified() -> None:
    splits = prepare_splits(_synthetic([10, 50, 3]), val_fraction=0.2)
    assert torch.bincount(splits.val.y).tolist() == [2, 10, 1]
    assert torch.bincount(splits.train.y).tolist() == [8, 40, 2]


def test_given_validation_is_used() -> None:
    val = Split(torch.zeros(2, 1, 1, 1), torch.tensor([0, 1]))
    splits = prepare_splits(_synthetic([4, 4], val=val), shots=2)
    assert splits.val is val and len(splits.train) == 4


def test_splits_are_seeded() -> None:
    data = _synthetic([40, 40])
    a, b = prepare_splits(data, shots=10, seed=1), prepare_splits(data, shots=10, seed=1)
    c = prepare_splits(data, shots=10, seed=2)
    assert _ids(a.train) == _ids(b.train) and _ids(a.val) == _ids(b.val)
    assert _ids(a.train) != _ids(c.train)


def test_too_few_for_shots() -> None:
    with pytest.raises(DataError, match=r"class 1 \('c1'\) has 3 training examples.*--shots 5"):
        prepare_splits(_synthetic([10, 3]), shots=5)


def test_too_few_for_validation() -> None:
    with pytest.raises(DataError, match=r"only 1 training example.*raise --shots"):
        prepare_splits(_synthetic([10, 10]), shots=1)


def test_bad_arguments() -> None:
    with pytest.raises(ReprogramError, match="val-fraction"):
        prepare_splits(_synthetic([10]), val_fraction=1.0)
    with pytest.raises(ReprogramError, match="shots"):
        prepare_splits(_synthetic([10]), shots=0)


def test_test_split_is_sealed() -> None:
    data = _synthetic([10, 10])
    splits = prepare_splits(data)
    assert splits.test.sealed and len(splits.test) == 4
    with pytest.raises(SealedSplitError, match="validation split only"):
        splits.test.open()
    splits.test.unseal()
    assert splits.test.open() is data.test


def test_folder_class_with_sub_folders_is_refused(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "0.png")
    _png(tmp_path / "b" / "1.png")
    _png(tmp_path / "b" / "more" / "2.png")  # would be left out without a word
    with pytest.raises(DataError, match=r"holds sub-folders \(more\)"):
        load_target(f"folder:{tmp_path}")
