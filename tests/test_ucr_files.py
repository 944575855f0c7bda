"""``ucr:PATH``: your own series in the UCR archive's file layout (.tsv/.csv/.txt or .ts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reprogram import FitConfig, fit
from reprogram.cli import main
from reprogram.data import load_target
from reprogram.data import ucr as ucr_module
from reprogram.data.ucr_files import looks_like_path
from reprogram.errors import DataError


def _write(path: Path, rows: list[list[str]], sep: str) -> None:
    path.write_text("\n".join(sep.join(r) for r in rows) + "\n")


def _gestures(folder: Path, sep: str = ",", suffix: str = ".csv") -> Path:
    """Word labels, ragged rows (lengths 5–7), a NaN token and an empty trailing field."""
    folder.mkdir(parents=True, exist_ok=True)
    train = [
        ["wave", "0", "1", "2", "3", "4", "5", "6"],
        ["tap", "1", "1", "1", "1", "1"],
        ["wave", "0", "2", "4", "6", "8", "NaN", ""],
        ["tap", "2", "2", "2", "2", "2", "2"],
    ]
    test = [["tap", "3", "3", "3", "3", "3"], ["wave", "1", "2", "3", "4", "5", "6", "7"]]
    _write(folder / f"Gestures_TRAIN{suffix}", train, sep)
    _write(folder / f"Gestures_TEST{suffix}", test, sep)
    return folder


@pytest.mark.parametrize(("sep", "suffix"), [(",", ".csv"), ("\t", ".tsv"), (" ", ".txt")])
def test_text_files_read_with_word_labels_and_ragged_rows(
    tmp_path: Path, sep: str, suffix: str
) -> None:
    folder = _gestures(tmp_path / "g", sep, suffix)
    data = load_target(f"ucr:{folder}")
    assert data.modality == "series" and data.class_names == ["tap", "wave"]
    assert data.train.x.shape == (4, 1, 7) and data.test.x.shape == (2, 1, 7)
    assert data.train.y.tolist() == [1, 0, 1, 0] and data.test.y.tolist() == [0, 1]
    row = data.train.x[2, 0]
    assert row[:5].tolist() == [0, 2, 4, 6, 8] and torch.isnan(row[5:]).all()
    assert torch.isnan(data.train.x[1, 0, 5:]).all()  # the short row: padded at the end
    assert data.info["length"] == "5–7" and data.info["source"].startswith("local files")
    # naming the _TRAIN file itself is the same target
    same = load_target(f"ucr:{folder / ('Gestures_TRAIN' + suffix)}")
    assert torch.equal(same.train.y, data.train.y)


def test_numeric_labels_sort_as_the_archives_do(tmp_path: Path) -> None:
    folder = tmp_path / "n"
    folder.mkdir()
    _write(folder / "N_TRAIN.tsv", [["-1", "0", "1"], ["1", "1", "0"], ["10", "2", "2"]], "\t")
    _write(folder / "N_TEST.tsv", [["1", "0", "0"]], "\t")
    data = load_target(f"ucr:{folder}")
    assert data.class_names == ["-1", "1", "10"] and data.train.y.tolist() == [0, 1, 2]


def test_ts_file_matches_the_archive_set() -> None:
    aeon = ucr_module._aeon_sets().get("GunPoint")
    if aeon is None:
        pytest.skip("aeon's bundled GunPoint is not installed")
    local = load_target(f"ucr:{aeon / 'GunPoint' / 'GunPoint_TRAIN.ts'}")
    archive = load_target("ucr:GunPoint")
    assert local.class_names == archive.class_names
    assert torch.equal(local.train.y, archive.train.y)
    torch.testing.assert_close(local.test.x, archive.test.x, atol=1e-5, rtol=0)


def test_bad_paths_and_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_target(f"ucr:{tmp_path / 'absent'}")
    with pytest.raises(DataError, match="found none"):
        load_target(f"ucr:{tmp_path}")
    folder = _gestures(tmp_path / "g")
    with pytest.raises(DataError, match="not a <Name>_TRAIN file"):
        load_target(f"ucr:{folder / 'Gestures_TEST.csv'}")
    (folder / "Gestures_TEST.csv").unlink()
    with pytest.raises(DataError, match=r"not Gestures_TEST\.csv beside it"):
        load_target(f"ucr:{folder}")
    bad = tmp_path / "h"
    bad.mkdir()
    _write(bad / "H_TRAIN.csv", [["label", "t0", "t1"], ["a", "1", "2"]], ",")
    _write(bad / "H_TEST.csv", [["a", "1", "2"]], ",")
    with pytest.raises(DataError, match="line 1: a value is not a number"):
        load_target(f"ucr:{bad}")


def test_only_paths_are_read_as_files() -> None:
    assert looks_like_path("./MyData") and looks_like_path("~/d") and looks_like_path("a/b")
    assert looks_like_path("X_TRAIN.tsv") and not looks_like_path("GunPoint")


def test_fit_records_an_absolute_path_that_evaluates_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "work" / "waves"
    folder.mkdir(parents=True)
    for split, n in (("TRAIN", 12), ("TEST", 6)):
        rows = []
        for i in range(n):
            label = i % 2
            t = np.linspace(0, 6, 30) + rng.uniform(0, 3)
            values = np.sin(t) if label else np.sign(np.sin(t))
            rows.append([str(label), *(f"{v:.4f}" for v in values)])
        _write(folder / f"Waves_{split}.tsv", rows, "\t")
    monkeypatch.chdir(tmp_path / "work")
    out = tmp_path / "run"
    config = FitConfig(
        source="tiny-random-cnn", target="ucr:./waves", mapping="linear", epochs=1,
        out=str(out), progress=False, plots=False,
    )  # fmt: skip
    fit(config)
    recorded = json.loads((out / "config.json").read_text())["target"]["name"]
    assert recorded == f"ucr:{folder.resolve()}"
    monkeypatch.chdir(tmp_path)  # elsewhere: ucr:./waves would name nothing here
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.splitlines()[-1])["test_accuracy"]
    # predict reads the same text layout: with --labelled it scores the test file as eval did
    test_file = str(folder / "Waves_TEST.tsv")
    assert main(["predict", str(out), test_file, "--labelled"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and "(label " in lines[0]
    assert lines[-1].startswith(f"accuracy against the labels given: {scored:.4f} (")
    # without labels every field is a value; a label first is refused with the flag to use
    values_only = tmp_path / "new.csv"
    values_only.write_text(
        "\n".join(
            ",".join(ln.split("\t")[1:]) for ln in Path(test_file).read_text().split("\n")[:2]
        )
    )
    assert main(["predict", str(out), str(values_only), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["input"] for r in rows] == [f"{values_only}[0]", f"{values_only}[1]"]
    assert "label" not in rows[0]
    assert main(["predict", str(out), test_file]) == 2
    assert "add --labelled" in " ".join(capsys.readouterr().err.split())
