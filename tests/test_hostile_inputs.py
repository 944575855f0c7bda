"""Hostile or careless inputs end in a named error (exit 2, one message), never "unexpected".

Issue 34, item 7: each case below once ended in "unexpected … likely a bug" (exit 1), in a
huge allocation, or in a misleading message. Everything runs in-process through
``reprogram.cli.main`` (or the library call the issue names) on the ``tiny-random-cnn``
source and small targets made in a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_config
from PIL import Image

from reprogram import fit, load_artifact
from reprogram.cli import main
from reprogram.data import load_target
from reprogram.data.checks import MAX_IMAGE_PIXELS, MAX_INPUT_VALUES
from reprogram.errors import ArtifactError, DataError
from reprogram.programs.base import MAX_CANVAS

FAST = ["--source", "tiny-random-cnn", "--epochs", "1", "--quiet", "--no-plots"]


def user_error(capsys: pytest.CaptureFixture[str], *argv: object) -> str:
    """Run ``reprogram ARGV``, which must fail as a user error (exit 2); its message."""
    code = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    assert code == 2, f"exit {code}; stderr: {err}"
    assert "unexpected" not in err and "Traceback" not in err, err
    assert err.startswith(f"reprogram {argv[0]}: error: "), err
    return err.strip()


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPROGRAM_DEBUG", raising=False)


def _task(n: int = 12, k: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.integers(0, 255, (n, 8, 8)).astype(np.uint8)
    return {"x_train": x, "y_train": y, "x_test": x, "y_test": y}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny fit (tiny-random-cnn on digits, one epoch)."""
    config = tiny_config(tmp_path_factory.mktemp("hostile"), epochs=1)
    fit(config)
    return Path(config.out)


@pytest.fixture
def artifact_copy(artifact: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(artifact, tmp_path / "copy"))


def _edit_config(directory: Path, edit: object) -> None:
    path = directory / "config.json"
    config = json.loads(path.read_text())
    edit(config)  # type: ignore[operator]
    path.write_text(json.dumps(config))


# ------------------------------------------------------------------ 1-2: empty array files
def test_zero_byte_npy_for_predict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path
) -> None:
    path = tmp_path / "empty.npy"
    path.write_bytes(b"")
    msg = user_error(capsys, "predict", artifact, path)
    assert "is empty (0 bytes)" in msg and "numpy.save" in msg


def test_zero_byte_npz_target(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    msg = user_error(capsys, "fit", "--target", f"npz:{path}", *FAST, "--out", tmp_path / "o")
    assert "is empty (0 bytes)" in msg


def test_an_honest_zip_bomb_npz_is_refused_before_decompressing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A .npz of zeros (small on disk, 64 MB once read) under a 16 MB bound: refused from the
    archive's recorded sizes, naming the file, the sizes and the variable that raises it."""
    path = tmp_path / "bomb.npz"
    zeros = np.zeros((16, 1, 1024, 1024), dtype=np.float32)
    labels = np.zeros(16, dtype=np.int64)
    np.savez_compressed(path, x_train=zeros, y_train=labels, x_test=zeros[:1], y_test=labels[:1])
    assert path.stat().st_size < 1_000_000
    monkeypatch.setenv("REPROGRAM_MAX_ARRAY_BYTES", str(16 << 20))
    msg = user_error(capsys, "fit", "--target", f"npz:{path}", *FAST, "--out", tmp_path / "o")
    assert "bomb.npz" in msg and "0.1 GB" in msg and "REPROGRAM_MAX_ARRAY_BYTES" in msg
    assert not (tmp_path / "o").exists()


def test_empty_npz_and_npy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path
) -> None:
    np.savez(tmp_path / "nothing.npz")
    msg = user_error(
        capsys, "fit", "--target", f"npz:{tmp_path}/nothing.npz", *FAST, "--out", tmp_path / "o"
    )
    assert "lacks array(s) x_train" in msg
    np.save(tmp_path / "none.npy", np.zeros((0, 8, 8), np.uint8))
    assert "hold no examples" in user_error(capsys, "predict", artifact, tmp_path / "none.npy")
    np.savez(tmp_path / "nothing.npz")
    msg = user_error(capsys, "predict", artifact, tmp_path / "nothing.npz")
    assert "no array named x" in msg


# ------------------------------------------------------------------ 3: object arrays
def test_object_array_for_predict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path
) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([1, "a", None], dtype=object), allow_pickle=True)
    msg = user_error(capsys, "predict", artifact, path)
    assert "Python objects, which are never unpickled" in msg
    np.savez(tmp_path / "objects.npz", x=np.array([None, 1], dtype=object))
    msg = user_error(capsys, "predict", artifact, tmp_path / "objects.npz")
    assert "Python objects" in msg


def test_string_array_for_predict(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path
) -> None:
    np.save(tmp_path / "words.npy", np.array([["a", "b"], ["c", "d"]]))
    msg = user_error(capsys, "predict", artifact, tmp_path / "words.npy")
    assert "not numbers" in msg


# ------------------------------------------------------------------ 4: a truncated .npz
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_npz(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path, keep: float
) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((4, 8, 8), np.uint8), **_task())
    data = good.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: int(len(data) * keep)])
    msg = user_error(capsys, "fit", "--target", f"npz:{cut}", *FAST, "--out", tmp_path / "o")
    assert "cannot read" in msg and "numpy.savez" in msg
    msg = user_error(capsys, "predict", artifact, cut)
    assert "truncated or corrupt" in msg


# ------------------------------------------------------------------ 5: text named .npz
def test_text_file_named_npz(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path
) -> None:
    path = tmp_path / "notes.npz"
    path.write_text("label,value\n1,2\n")
    for argv in (
        ["fit", "--target", f"npz:{path}", *FAST, "--out", tmp_path / "o"],
        ["predict", artifact, path],
    ):
        msg = user_error(capsys, *argv)
        assert "pickle" not in msg  # numpy's guess for any unknown bytes
        assert "not a .npz" in msg or "not a .npy or .npz" in msg


# ------------------------------------------------------------------ 6: a decompression bomb
def _bomb_png(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims ``width × height`` grey pixels (data: one row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * (width + 1))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
    path.write_bytes(png + chunk(b"IEND", b""))


def test_huge_png_refused_before_decoding(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path
) -> None:
    bomb = tmp_path / "bomb.png"
    _bomb_png(bomb, 20000, 20000)
    msg = user_error(capsys, "predict", artifact, bomb)
    assert "20000x20000" in msg or "decompression bomb" in msg.lower()
    # below Pillow's own warning (89 Mpx) but above our bound: refused from the header too
    side = int((MAX_IMAGE_PIXELS * 1.2) ** 0.5)
    _bomb_png(bomb, side, side)
    msg = user_error(capsys, "predict", artifact, bomb)
    assert f"{side}x{side}" in msg and "megapixels" in msg
    for name in ("a", "b"):
        (tmp_path / "folder" / name).mkdir(parents=True)
        Image.new("L", (8, 8)).save(tmp_path / "folder" / name / "ok.png")
    shutil.copy(bomb, tmp_path / "folder" / "a" / "big.png")
    with pytest.raises(DataError, match="megapixels"):
        load_target(f"folder:{tmp_path / 'folder'}")


# ------------------------------------------------------------------ 7-8: shapes and canvases
@pytest.mark.parametrize("size", [-5, 0, 100_000])
def test_canvas_size_on_the_command_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, size: int
) -> None:
    argv = ["fit", "--target", "digits", *FAST, "--shots", "5", "--program", "resize-pad"]
    msg = user_error(capsys, *argv, "--canvas-size", size, "--out", tmp_path / "o")
    assert "canvas_size must be" in msg
    if size > 0:
        assert f"at most {MAX_CANVAS}" in msg
    argv = ["baseline", "--method", "linear-probe", "--target", "digits", "--quiet"]
    msg = user_error(
        capsys,
        *argv,
        "--canvas-size",
        size,
        "--out",
        tmp_path / "b",
        "--source",
        "tiny-random-cnn",
        "--shots",
        "5",
    )
    assert "canvas" in msg


@pytest.mark.parametrize(
    "shape",
    [[-1, 8, 8], [1, 0, 8], [2, 8], [3, 100_000, 100_000], "8x8", [1.5, 8, 8], [1, 8, 8, 8]],
)
def test_input_shape_in_config_json(
    capsys: pytest.CaptureFixture[str], artifact_copy: Path, shape: object
) -> None:
    def edit(config: dict) -> None:
        config["target"]["input_shape"] = shape

    _edit_config(artifact_copy, edit)
    with pytest.raises(ArtifactError, match="input_shape"):
        load_artifact(artifact_copy)
    assert "input_shape" in user_error(capsys, "eval", artifact_copy)
    assert "input_shape" in user_error(capsys, "predict", artifact_copy, artifact_copy / "x.npy")


def test_input_shape_bound_is_stated() -> None:
    assert MAX_INPUT_VALUES == 2**24 and MAX_CANVAS == 4096


@pytest.mark.parametrize("size", [-3, 100_000, "big"])
def test_canvas_size_in_config_json(
    capsys: pytest.CaptureFixture[str], artifact_copy: Path, size: object
) -> None:
    def edit(config: dict) -> None:
        config["program"]["options"]["canvas_size"] = size

    _edit_config(artifact_copy, edit)
    msg = user_error(capsys, "eval", artifact_copy)
    assert "canvas_size" in msg


# ------------------------------------------------------------------ 9: a label of 1e9
def test_huge_label_refused_before_allocating(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    arrays = _task()
    for key in ("y_train", "y_test"):
        arrays[key] = np.where(arrays[key] == 2, 10**9, arrays[key])
    np.savez(tmp_path / "big.npz", **arrays)
    msg = user_error(
        capsys, "fit", "--target", f"npz:{tmp_path}/big.npz", *FAST, "--out", tmp_path / "o"
    )
    assert "labels go up to 1000000000 but only 3 distinct classes" in msg
    assert "0 … K-1" in msg


def test_labels_with_a_gap_are_refused(tmp_path: Path) -> None:
    arrays = _task()
    arrays["y_train"] = arrays["y_train"] * 2  # classes 0, 2, 4: 1 and 3 never occur
    arrays["y_test"] = arrays["y_train"]
    np.savez(tmp_path / "gap.npz", **arrays)
    with pytest.raises(DataError, match="classes 1, 3 never do"):
        load_target(f"npz:{tmp_path}/gap.npz")
    # with class names every label is named: a class without examples is the user's choice
    np.savez(tmp_path / "named.npz", **arrays, class_names=np.array(list("abcde")))
    assert load_target(f"npz:{tmp_path}/named.npz").num_classes == 5


# ------------------------------------------------------------------ 10: an unwritable --out
def test_out_below_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("keep me")
    out = tmp_path / "file" / "run"
    msg = user_error(capsys, "fit", "--target", "digits", *FAST, "--shots", "5", "--out", out)
    assert "cannot be made" in msg and "is a file" in msg
    msg = user_error(
        capsys,
        "baseline",
        "--method",
        "pixels-logreg",
        "--target",
        "digits",
        "--quiet",
        "--out",
        out,
    )
    assert "is a file" in msg
    assert (tmp_path / "file").read_text() == "keep me"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_out_without_write_permission(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for out in (locked, locked / "run"):
            argv = ["fit", "--target", "digits", *FAST, "--shots", "5", "--out", out]
            assert "is not writable" in user_error(capsys, *argv)
    finally:
        locked.chmod(0o700)


def test_unwritable_out_found_before_training(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder that refuses new files (a read-only mount, say) is named before any work:
    simulated by a failing trial file, since permission bits do not stop root."""
    import reprogram.data.checks as checks

    def refuse(*args: object, **kw: object) -> None:
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(checks.tempfile, "mkstemp", refuse)
    out = tmp_path / "run"
    msg = user_error(capsys, "fit", "--target", "digits", *FAST, "--shots", "5", "--out", out)
    assert "is not writable" in msg and "Read-only file system" in msg
    assert not out.exists()


# ------------------------------------------------------------------ 11: a single class
def test_single_class_target_for_pixels_logreg(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    arrays = _task(k=1)
    np.savez(tmp_path / "one.npz", **arrays)
    argv = ["baseline", "--method", "pixels-logreg", "--target", f"npz:{tmp_path}/one.npz"]
    msg = user_error(capsys, *argv, "--quiet", "--out", tmp_path / "o")
    assert "at least 2 classes" in msg and "only class '0'" in msg


# ------------------------------------------------------------------ 12-13: misleading messages
def test_tensor_shape_mismatch_names_the_shapes(artifact_copy: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = artifact_copy / "program.safetensors"
    state = load_file(str(path))
    name = sorted(state)[0]
    expected = list(state[name].shape)
    state[name] = state[name].reshape(-1)[:-1].clone() if state[name].numel() > 1 else state[name]
    save_file(state, str(path))
    with pytest.raises(ArtifactError) as info:
        load_artifact(artifact_copy)
    msg = str(info.value)
    assert f"{name} is {list(state[name].shape)}, needs {expected}" in msg
    assert "expected [" not in msg  # the old message listed the same names twice


def test_baseline_epochs_zero_does_not_suggest_fit_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["baseline", "--method", "scratch", "--target", "digits", "--epochs", "0", "--quiet"]
    msg = user_error(capsys, *argv, "--shots", "5", "--out", tmp_path / "o")
    assert "--mapping" not in msg and "--epochs 1 or more" in msg
    assert not (tmp_path / "o").exists()  # refused before --out is prepared


# ------------------------------------------------------------------ found by fault injection
def test_npy_header_claiming_more_than_the_file_holds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path
) -> None:
    """numpy allocates what a header claims before reading: checked against the file size."""
    path = tmp_path / "liar.npy"
    np.save(path, np.zeros((2, 8, 8), np.uint8))
    data = path.read_bytes().replace(b"(2, 8, 8)", b"(99999999, 8, 8)".ljust(9)[:16])
    header_len = data.index(b"\n") + 1
    path.write_bytes(data[:header_len] + b"\x00" * 128)
    msg = user_error(capsys, "predict", artifact, path)
    assert "header claims an array of shape [99999999, 8, 8]" in msg


def test_garbled_npy_header(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path
) -> None:
    path = tmp_path / "garbled.npy"
    np.save(path, np.zeros((2, 8, 8), np.uint8))
    # an unclosed bracket: numpy's header parser raises tokenize.TokenError
    path.write_bytes(path.read_bytes().replace(b"(2, 8, 8), }", b"(2, 8, 8 , }", 1))
    assert "cannot read array file" in user_error(capsys, "predict", artifact, path)
    np.savez(tmp_path / "garbled.npz", x_train=np.zeros((2, 8, 8), np.uint8))
    data = (tmp_path / "garbled.npz").read_bytes().replace(b"(2, 8, 8), }", b"(2, 8, 8 , }", 1)
    (tmp_path / "garbled.npz").write_bytes(data)  # stored uncompressed: the header is visible
    with pytest.raises(DataError, match="cannot read"):
        load_target(f"npz:{tmp_path}/garbled.npz")


@pytest.mark.parametrize("metrics", ["[1]", '{"val_accuracy": "high"}'])
def test_eval_with_damaged_metrics(
    capsys: pytest.CaptureFixture[str], artifact_copy: Path, metrics: str
) -> None:
    (artifact_copy / "metrics.json").write_text(metrics)
    assert "metrics.json" in user_error(capsys, "eval", artifact_copy, "--split", "val")


def test_eval_with_a_negative_batch_size(
    capsys: pytest.CaptureFixture[str], artifact_copy: Path
) -> None:
    _edit_config(artifact_copy, lambda c: c["training"].update(eval_batch_size=-5))
    assert "eval_batch_size" in user_error(capsys, "eval", artifact_copy, "--split", "val")
