"""The ``reprogram`` command line: user errors end in one clear message, never a traceback.

Everything runs on the fast ``tiny-random-cnn`` source (3×32×32 inputs, 100 classes) and a
tiny 3-class npz task of 8×8 grey images made in a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from reprogram.cli import main
from reprogram.sources import build_source

CLASS_NAMES = ["cat", "dog", "emu"]
FAST = ["--source", "tiny-random-cnn", "--epochs", "1", "--quiet", "--no-plots"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- helpers
def task_arrays(
    n_train: int = 20, n_test: int = 10, seed: int = 0, float_x: bool = False
) -> dict[str, np.ndarray]:
    """A 3-class task: ``x`` ``[N, 8, 8]`` uint8 (or float32 in [0, 1]), ``y`` ``[N]``."""
    rng = np.random.default_rng(seed)
    k = len(CLASS_NAMES)
    y_train = np.repeat(np.arange(k), n_train)
    y_test = np.repeat(np.arange(k), n_test)
    # a class-dependent brightness so that the task is learnable at all
    x_train = rng.integers(0, 80, (len(y_train), 8, 8)) + 80 * y_train[:, None, None]
    x_test = rng.integers(0, 80, (len(y_test), 8, 8)) + 80 * y_test[:, None, None]
    arrays = {
        "x_train": x_train.astype(np.uint8),
        "y_train": y_train,
        "x_test": x_test.astype(np.uint8),
        "y_test": y_test,
        "class_names": np.array(CLASS_NAMES),
    }
    if float_x:
        arrays["x_train"] = arrays["x_train"].astype(np.float32) / 255.0
        arrays["x_test"] = arrays["x_test"].astype(np.float32) / 255.0
    return arrays


def save_npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return f"npz:{path}"


def cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run ``reprogram ARGV`` in-process; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def user_error(capsys: pytest.CaptureFixture[str], *argv: object) -> str:
    """Run a command that must fail as a user error; returns its (checked) message."""
    code, out, err = cli(capsys, *argv)
    command = str(argv[0])
    assert code == 2, f"exit {code}; stderr: {err}"
    assert "Traceback" not in err and "unexpected" not in err, err
    assert err.startswith(f"reprogram {command}: error: "), err
    message = err.strip()
    assert message and "\n\n" not in message, f"not one paragraph: {err!r}"
    assert out == "", f"a failed command printed to stdout: {out!r}"
    return message


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped behaviour: unexpected errors are reported, not raised."""
    monkeypatch.delenv("REPROGRAM_DEBUG", raising=False)


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``npz:PATH`` of the good 3-class task (20 train / 10 test images per class)."""
    return save_npz(tmp_path_factory.mktemp("task") / "task.npz", **task_arrays())


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory, task: str) -> Path:
    """A finished fit run (2 epochs, plots on) shared by the read-only tests."""
    out = tmp_path_factory.mktemp("fit") / "run"
    argv = ["fit", "--target", task, "--source", "tiny-random-cnn", "--epochs", "2"]
    argv += ["--quiet", "--seed", "5", "--out", str(out)]
    assert main(argv) == 0
    return out


@pytest.fixture
def artifact_copy(artifact: Path, tmp_path: Path) -> Path:
    """A private copy of the shared artifact, for tests that damage it."""
    return Path(shutil.copytree(artifact, tmp_path / "copy"))


# --------------------------------------------------------------------------- bad data
def test_missing_npz_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    msg = user_error(capsys, "fit", "--target", "npz:/nonexistent.npz", *FAST, "--out", tmp_path)
    assert "/nonexistent.npz does not exist" in msg


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"this is a text file, not arrays\n", "is not a .npz file"),
        ("truncated-zip", "cannot read"),
    ],
    ids=["text", "truncated-zip"],
)
def test_unreadable_npz_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: object, expected: str
) -> None:
    path = tmp_path / "x.npz"
    if content == "truncated-zip":
        np.savez(path, **task_arrays())
        path.write_bytes(path.read_bytes()[:200])
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    msg = user_error(capsys, "fit", "--target", f"npz:{path}", *FAST, "--out", tmp_path / "o")
    assert expected in msg and str(path) in msg
    assert "allow_pickle" not in msg  # never suggest unpickling a user's file


def test_folder_with_mixed_image_sizes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for name, (w, h) in (("a", (8, 8)), ("b", (9, 8))):
        (root / name).mkdir(parents=True)
        for i in range(5):
            pixels = rng.integers(0, 256, (h, w)).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    msg = user_error(capsys, "fit", "--target", f"folder:{root}", *FAST, "--out", tmp_path / "o")
    assert "images have different sizes" in msg and f"folder:{root}#size=S" in msg
    assert "most common size here is" in msg
    # #size=S squashes every image to S x S
    from reprogram.data import load_target
    from reprogram.errors import ReprogramError

    data = load_target(f"folder:{root}#size=12")
    both = torch.cat([data.train.x, data.test.x])
    assert both.shape[1:] == (1, 12, 12) and 0.0 <= float(both.min()) <= float(both.max()) <= 1.0
    assert data.info["resized"] == "12x12"
    with pytest.raises(ReprogramError, match="size must be 0"):
        load_target(f"folder:{root}#size=-3")
    assert "8x8" in msg and "9x8" in msg


def test_labels_that_are_not_integer_classes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    arrays = task_arrays()
    arrays["y_train"] = arrays["y_train"].astype(np.float64)
    arrays["y_train"][3] = 1.5
    target = save_npz(tmp_path / "labels.npz", **arrays)
    msg = user_error(capsys, "fit", "--target", target, *FAST, "--out", tmp_path / "o")
    assert "not whole numbers (1.5)" in msg and "train split" in msg


def test_class_with_fewer_examples_than_shots(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, task: str
) -> None:
    msg = user_error(
        capsys, "fit", "--target", task, *FAST, "--shots", "50", "--out", tmp_path / "o"
    )
    assert "class 0 ('cat') has 20 training examples, fewer than --shots 50" in msg


def test_class_too_small_for_the_validation_split(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = save_npz(tmp_path / "one.npz", **task_arrays(n_train=1))
    msg = user_error(capsys, "fit", "--target", target, *FAST, "--out", tmp_path / "o")
    assert "has only 1 training example(s)" in msg and "leaves none to train on" in msg


@pytest.mark.parametrize(("bad", "counts"), [(np.nan, "1 NaN and 0"), (np.inf, "0 NaN and 1")])
def test_nan_and_inf_inputs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bad: float, counts: str
) -> None:
    arrays = task_arrays(float_x=True)
    arrays["x_train"][4, 2, 2] = bad
    target = save_npz(tmp_path / "bad.npz", **arrays)
    msg = user_error(capsys, "fit", "--target", target, *FAST, "--out", tmp_path / "o")
    assert f"inputs contain {counts} infinite values" in msg


# --------------------------------------------------------------------------- bad artifacts
@pytest.mark.parametrize("damage", ["truncate", "garbage", "bad-header", "empty"])
def test_corrupt_program_file(
    capsys: pytest.CaptureFixture[str], artifact_copy: Path, damage: str
) -> None:
    path = artifact_copy / "program.safetensors"
    data = path.read_bytes()
    damaged = {
        "truncate": data[: len(data) // 2],
        "garbage": bytes(range(256)) * (len(data) // 256 + 1),
        "bad-header": (16).to_bytes(8, "little") + b"{not json at all" + data[24:],
        "empty": b"",
    }[damage]
    path.write_bytes(damaged)
    msg = user_error(capsys, "eval", artifact_copy)
    assert f"{path} cannot be read" in msg and "corrupt or truncated" in msg


def test_artifact_with_another_fingerprint_is_refused(
    capsys: pytest.CaptureFixture[str], artifact_copy: Path
) -> None:
    config_path = artifact_copy / "config.json"
    config = json.loads(config_path.read_text())
    config["source"]["fingerprint"] = "f00d" * 16
    config_path.write_text(json.dumps(config))
    msg = user_error(capsys, "eval", artifact_copy)
    assert "trained on source 'tiny-random-cnn' with weights f00df00df00d" in msg
    assert "exact model" in msg


def test_artifact_for_another_source_model_is_refused(
    capsys: pytest.CaptureFixture[str], artifact_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("timm")
    monkeypatch.setenv("REPROGRAM_TIMM_RANDOM_INIT", "1")
    config_path = artifact_copy / "config.json"
    config = json.loads(config_path.read_text())
    config["source"]["name"] = "timm:resnet18"
    config_path.write_text(json.dumps(config))
    msg = user_error(capsys, "eval", artifact_copy)
    trained = config["source"]["fingerprint"][:12]
    assert f"trained on source 'timm:resnet18' with weights {trained}" in msg
    assert "A program only works with the exact model it was trained for" in msg


def test_artifact_config_without_fingerprint(
    capsys: pytest.CaptureFixture[str], artifact_copy: Path
) -> None:
    config_path = artifact_copy / "config.json"
    config = json.loads(config_path.read_text())
    del config["source"]["fingerprint"]
    config_path.write_text(json.dumps(config))
    msg = user_error(capsys, "eval", artifact_copy)
    assert "lacks field 'fingerprint'" in msg


# --------------------------------------------------------------------------- bad flags
def test_more_devices_than_cpu_cores(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, task: str
) -> None:
    if torch.cuda.is_available():
        pytest.skip("the CPU-core limit applies to CPU-only machines")
    n = (os.cpu_count() or 1) + 1
    msg = user_error(
        capsys, "fit", "--target", task, *FAST, "--devices", n, "--out", tmp_path / "o"
    )
    assert f"--devices {n} asks for more processes than this machine has CPU cores" in msg


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--program", "nope"], ["unknown program 'nope'", "border", "resize-pad", "smm"]),
        (["--mapping", "nope"], ["unknown mapping 'nope'", "random", "ilm", "blm+", "linear"]),
        (["--source", "nope"], ["unknown source 'nope'", "Known sources:", "tiny-random-cnn"]),
        (["--source", "tiny-random-cn"], ["Did you mean 'tiny-random-cnn'?"]),
        (["--program-opt", "canvas_size=abc"], ["canvas_size='abc'", "is not a valid int"]),
        (["--program-opt", "canvas_size"], ["--program-opt takes KEY=VALUE"]),
    ],
    ids=["program", "mapping", "source", "source-typo", "program-opt", "program-opt-no-value"],
)
def test_unknown_names_and_bad_options(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    task: str,
    flags: list[str],
    needles: list[str],
) -> None:
    # later flags win, so these override the --source in FAST
    msg = user_error(capsys, "fit", "--target", task, *FAST, *flags, "--out", tmp_path / "o")
    for needle in needles:
        assert needle in msg


def test_out_holding_a_finished_run(
    capsys: pytest.CaptureFixture[str], artifact_copy: Path, task: str
) -> None:
    before = (artifact_copy / "metrics.json").read_bytes()
    msg = user_error(capsys, "fit", "--target", task, *FAST, "--out", artifact_copy)
    assert "already holds a finished run" in msg and "--overwrite" in msg
    assert (artifact_copy / "metrics.json").read_bytes() == before  # left untouched
    code, _, err = cli(
        capsys, "fit", "--target", task, *FAST, "--overwrite", "--out", artifact_copy
    )
    assert code == 0, err
    assert json.loads((artifact_copy / "metrics.json").read_text())["epochs"] == 1


def test_resume_with_nothing_to_resume(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact_copy: Path, task: str
) -> None:
    msg = user_error(capsys, "fit", "--target", task, *FAST, "--resume", "--out", tmp_path / "new")
    assert "holds no checkpoint; there is nothing to resume" in msg
    msg = user_error(capsys, "fit", "--target", task, *FAST, "--resume", "--out", artifact_copy)
    assert "holds a finished run; there is nothing to resume" in msg


def test_out_that_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, task: str) -> None:
    path = tmp_path / "a-file"
    path.write_text("keep me")
    msg = user_error(capsys, "fit", "--target", task, *FAST, "--out", path)
    assert f"--out {path} is a file" in msg
    assert path.read_text() == "keep me"


def test_predict_bad_inputs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path
) -> None:
    missing = tmp_path / "nope.png"
    msg = user_error(capsys, "predict", artifact, missing)
    assert f"input {missing} does not exist" in msg
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    msg = user_error(capsys, "predict", artifact, text)
    assert f"cannot tell what {text} is" in msg and ".npy/.npz" in msg


# --------------------------------------------------------------------------- happy paths
def _table_value(output: str, key: str) -> str:
    """The value of row ``key`` in a printed two-column table."""
    for line in output.splitlines():
        if line.strip().startswith(key + "  "):
            return line.strip()[len(key) :].strip()
    raise AssertionError(f"no row {key!r} in:\n{output}")


def test_eval_reproduces_the_recorded_accuracies(
    capsys: pytest.CaptureFixture[str], artifact: Path
) -> None:
    metrics = json.loads((artifact / "metrics.json").read_text())
    code, out, err = cli(capsys, "eval", artifact, "--json")
    assert code == 0, err
    assert _table_value(err, "reproduced") == "yes, exactly"  # --json: the table on stderr
    assert _table_value(err, "test accuracy").startswith(f"{metrics['test_accuracy']:.4f}")
    assert f"({metrics['splits']['test']} examples)" in err
    result = json.loads(out)  # stdout is the JSON alone
    assert result["test_accuracy"] == metrics["test_accuracy"]
    assert result["test_loss"] == pytest.approx(metrics["test_loss"], abs=1e-6)
    assert result["reproduced"] is True and result["recorded_at_fit"] == result["test_accuracy"]

    code, out, err = cli(capsys, "eval", artifact, "--split", "val", "--json")
    assert code == 0, err
    assert _table_value(err, "reproduced") == "yes, exactly"
    result = json.loads(out)
    assert result["val_accuracy"] == metrics["val_accuracy"]
    assert f"({metrics['splits']['val']} examples)" in err
    code, out, err = cli(capsys, "eval", artifact)
    assert _table_value(out, "reproduced") == "yes, exactly"  # without --json: on stdout


def test_fit_writes_a_complete_artifact(artifact: Path, task: str) -> None:
    names = {p.name for p in artifact.iterdir()}
    assert {"config.json", "program.safetensors", "metrics.json"} <= names
    assert {"program.png", "mapping.png"} <= names
    assert not any(n.endswith((".ckpt", ".tmp")) for n in names), names  # no leftovers

    config = json.loads((artifact / "config.json").read_text())
    source = build_source("tiny-random-cnn")
    assert config["source"]["name"] == "tiny-random-cnn"
    assert config["source"]["fingerprint"] == source.fingerprint()
    assert config["target"]["name"] == f"npz:{Path(task[4:]).resolve()}"
    assert config["target"]["class_names"] == CLASS_NAMES
    assert config["target"]["input_shape"] == [1, 8, 8]
    assert config["program"]["name"] == "resize-pad"
    assert "canvas_size" in config["program"]["options"]  # as given (None: the default)
    assert config["program"]["canvas_size"] == 32  # as resolved: the source's input size
    assert config["mapping"]["name"] == "linear"
    assert isinstance(config["mapping"]["options"], dict)
    table = config["mapping"]["table"]
    assert len(table) == len(CLASS_NAMES)
    for row in table:
        assert row["source_labels"] and set(row["source_labels"]) <= set(source.label_names)
    assert config["optimizer"]["name"] == "gradient"
    assert config["seed"] == 5
    assert config["versions"]["torch"] == torch.__version__

    state = load_file(str(artifact / "program.safetensors"))
    assert state and all(k.startswith(("program.", "mapping.")) for k in state), sorted(state)
    assert any(k.startswith("program.") for k in state)
    assert any(k.startswith("mapping.") for k in state)

    metrics = json.loads((artifact / "metrics.json").read_text())
    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["trainable_parameters"] == sum(t.numel() for t in state.values())
    assert metrics["source_parameters"] == source.num_parameters
    assert metrics["train_seconds"] > 0
    assert metrics["epochs"] == 2 and metrics["best_epoch"] in (1, 2)
    assert metrics["splits"] == {"train": 48, "val": 12, "test": 30}

    for picture in ("program.png", "mapping.png"):
        data = (artifact / picture).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, picture
        with Image.open(artifact / picture) as im:
            assert min(im.size) >= 100, (picture, im.size)


def test_no_plots_writes_no_pictures(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, task: str
) -> None:
    code, out, err = cli(capsys, "fit", "--target", task, *FAST, "--out", tmp_path / "run")
    assert code == 0, err
    assert "test accuracy" in out and "48 train / 12 val / 30 test" in out
    assert not list((tmp_path / "run").glob("*.png"))


def test_predict_image_and_npy_batch(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, artifact: Path
) -> None:
    rng = np.random.default_rng(1)
    png = tmp_path / "one.png"
    Image.fromarray(rng.integers(0, 256, (8, 8)).astype(np.uint8)).save(png)
    colour = tmp_path / "colour.png"  # RGB and another size: converted and resized
    Image.fromarray(rng.integers(0, 256, (16, 12, 3)).astype(np.uint8)).save(colour)
    batch = tmp_path / "batch.npy"
    np.save(batch, rng.integers(0, 256, (4, 8, 8)).astype(np.uint8))

    code, out, err = cli(capsys, "predict", artifact, png, colour, batch)
    assert code == 0, err
    lines = out.strip().splitlines()
    expected = [str(png), str(colour)] + [f"{batch}[{i}]" for i in range(4)]
    assert [line.split("\t")[0] for line in lines] == expected
    for line in lines:
        _, name, probability = line.split("\t")
        assert name in CLASS_NAMES
        assert 1 / len(CLASS_NAMES) <= float(probability) <= 1.0

    # a folder stands for the image files under it (sorted, sub-folders included)
    (tmp_path / "more" / "b").mkdir(parents=True)
    for name in ("more/b/two.png", "more/a.png", "more/.hidden.png"):
        Image.fromarray(rng.integers(0, 256, (8, 8)).astype(np.uint8)).save(tmp_path / name)
    code, out, err = cli(capsys, "predict", artifact, tmp_path / "more")
    assert code == 0, err
    assert [line.split("\t")[0] for line in out.strip().splitlines()] == [
        str(tmp_path / "more" / "a.png"), str(tmp_path / "more" / "b" / "two.png")]

    code, out, err = cli(capsys, "predict", artifact, batch, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 4
    for row in rows:
        assert CLASS_NAMES[row["index"]] == row["class"]


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("sources", ["efficientnet-lite0", "timm:", "tiny-random-cnn"]),
        ("targets", ["fashion-mnist", "digits", "npz:", "folder:"]),
        ("programs", ["border", "resize-pad", "full", "resize"]),
        ("mappings", ["random", "flm", "ilm", "linear"]),
        ("optimizers", ["gradient"]),
        ("baselines", ["linear-probe", "pixels-logreg", "finetune", "scratch"]),
    ],
)
def test_list(capsys: pytest.CaptureFixture[str], kind: str, names: list[str]) -> None:
    code, out, err = cli(capsys, "list", kind)
    assert code == 0, err
    first_words = [line.split()[0] for line in out.strip().splitlines() if line.strip()]
    for name in names:
        assert any(w == name or (name.endswith(":") and w.startswith(name)) for w in first_words), (
            name,
            out,
        )


def test_list_shows_option_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "list", "mappings")
    assert code == 0, err
    lines = out.splitlines()
    linear = next(i for i, line in enumerate(lines) if line.startswith("linear "))
    assert lines[linear + 1].split() == ["options:", "init,", "encoder,", "head,", "side"]
    flm = next(i for i, line in enumerate(lines) if line.startswith("flm "))
    assert "options:" not in lines[flm + 1]  # flm takes none


def test_list_targets_names_prefixes_and_task_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "list", "targets")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert lines["solubility"].endswith("[regression, sequence]")
    assert "forecast:NAME" in lines and lines["forecast:NAME"].endswith("[forecast, regression]")
    assert lines["amp"].endswith("[sequence]") and lines["fashion-mnist"].endswith("[image]")
    assert "[" not in lines["npz:PATH.npz"]


def test_list_one_entry_explains_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "list", "mappings", "linear")
    assert code == 0, err
    assert "--mapping-opt init=zero" in out
    assert "  side  (str, default none)" in out
    assert "needs head=ridge" in " ".join(out.split())  # the help text, wrapped

    code, out, err = cli(capsys, "list", "baselines", "minirocket")
    assert code == 0, err
    assert "--method-opt classifier=ridge" in out and "minirocket:classifier=ridge" in out
    assert "  n_kernels  (int, default 10000)" in out

    code, out, err = cli(capsys, "list", "targets", "ucr:")  # a prefix entry by its prefix
    assert code == 0, err
    assert out.startswith("ucr:NAME: any UCR") and "takes no options" in out

    code, out, err = cli(capsys, "list", "mappings", "lineer")
    assert code == 2 and "Did you mean 'linear'?" in err


def test_unknown_option_points_to_list(capsys: pytest.CaptureFixture[str]) -> None:
    from reprogram.errors import ReprogramError
    from reprogram.mappings import MAPPINGS

    with pytest.raises(ReprogramError, match=r"reprogram list mappings linear"):
        MAPPINGS.build_config("linear", {"sides": "minirocket"})


# --------------------------------------------------------------------------- a real process
def test_subprocess_user_error_has_no_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("reprogram")
    if not exe.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    env = {k: v for k, v in os.environ.items() if k != "REPROGRAM_DEBUG"}
    argv = [str(exe), "fit", "--target", "npz:/nonexistent.npz", *FAST, "--out", str(tmp_path)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "reprogram fit: error: npz file /nonexistent.npz does not exist."
    )
    assert proc.stdout == ""


def test_list_programs_says_what_auto_picks(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "list", "programs")
    assert code == 0, err
    assert "Without --program (auto)" in out and "waveform for series on an audio source" in out


def test_bench_records_its_command_quoted_to_run_as_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command line a suite records is quoted for a shell: '|' and '#' in a method list
    would otherwise pipe or comment out the rest when pasted."""
    import reprogram.cli as cli

    seen: list[str | None] = []

    class Suites:
        @staticmethod
        def run(args: object, command: str | None) -> None:
            seen.append(command)

    methods = "text+verbalizer:words=no|yes@m#depth=2"
    argv = ["bench", "sequences", "--out", str(tmp_path), "--methods", methods]
    monkeypatch.setattr(sys, "argv", ["reprogram", *argv])
    monkeypatch.setattr(cli, "_bench_package", lambda: Suites)
    assert cli.main(argv) == 0
    assert seen == [f"reprogram bench sequences --out {tmp_path} --methods '{methods}'"]


def test_an_interrupted_bench_says_to_rerun_it_not_to_pass_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bench`` has no ``--resume``: a rerun of the same command skips finished cells and
    continues an interrupted one, so Ctrl-C must say that (``fit`` keeps its --resume hint)."""
    import reprogram.cli as cli

    class Stopped:
        def run(self, args: object, command: object) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_bench_package", lambda: Stopped())
    out = tmp_path / "suite"
    assert main(["bench", "sequences", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "run the same command again" in err
    assert "--resume" not in err
