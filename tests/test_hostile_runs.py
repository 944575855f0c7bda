"""Hostile artifacts and careless runs: nothing leaks, nothing is lost, nothing trains on NaN.

Each test here failed before its fix (issue: hostile inputs, servers and clients).
"""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path

import pytest
from helpers import tiny_config

from reprogram import fit, load_artifact
from reprogram.blackbox.server import artifact_model
from reprogram.cli import main
from reprogram.config import FitConfig
from reprogram.errors import ArtifactError, ReprogramError


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny fit (read-only for the tests: copy before changing it)."""
    return fit(tiny_config(tmp_path_factory.mktemp("runs"), "done", epochs=1)).out


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if p.is_file():
            (dst / p.name).write_bytes(p.read_bytes())
    return dst


# ----------------------------------------------------------------- 1: artifacts name sources


def test_an_artifact_cannot_send_inputs_to_a_host_it_names(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.3)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    run = _copy(finished, tmp_path / "edited")
    config = json.loads((run / "config.json").read_text())
    config["source"]["name"] = url  # an attacker's edit
    (run / "config.json").write_text(json.dumps(config))
    try:
        assert main(["eval", str(run)]) == 2
        assert "REPROGRAM_TRUSTED_SOURCES" in capsys.readouterr().err
        with pytest.raises(ArtifactError, match="a remote endpoint"):
            artifact_model(str(run))  # what `reprogram serve DIR` loads
        with pytest.raises(ArtifactError, match="name it yourself"):
            load_artifact(run)
        with pytest.raises(socket.timeout):
            listener.accept()  # nobody connected: no request, no token, no data
    finally:
        listener.close()


def test_an_onnx_file_named_by_an_artifact_needs_consent(finished: Path, tmp_path: Path) -> None:
    run = _copy(finished, tmp_path / "edited")
    config = json.loads((run / "config.json").read_text())
    config["source"]["name"] = "onnx:/etc/passwd"
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="a file"):
        load_artifact(run)


# ----------------------------------------------------------------- 6: no silent NaN training


@pytest.mark.parametrize("flag", [["--lr", "inf"], ["--lr", "nan"], ["--optimizer-opt", "lr=inf"]])
def test_non_finite_options_are_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: list[str]
) -> None:
    argv = ["fit", "--source", "tiny-random-cnn", "--target", "digits", "--out", str(tmp_path)]
    assert main([*argv, *flag]) == 2
    err = capsys.readouterr().err
    assert "finite" in err or "not a valid" in err
    assert not (tmp_path / "metrics.json").exists()


def test_a_diverging_run_stops_and_names_the_epoch(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, "nan", lr=1e30, epochs=3)
    with pytest.raises(ReprogramError, match=r"diverged in epoch \d.*smaller --lr"):
        fit(config)
    assert not (Path(config.out) / "metrics.json").exists()  # no NaN artifact


def test_finite_learning_rates_still_pass() -> None:
    assert math.isfinite(FitConfig(lr=1e-3).lr)  # type: ignore[arg-type]


# ----------------------------------------------------------------- 5: no data loss in --out


def test_overwrite_with_bad_inputs_keeps_the_finished_run(finished: Path, tmp_path: Path) -> None:
    run = _copy(finished, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    bad = tiny_config(tmp_path, "run", target=f"npz:{tmp_path / 'missing.npz'}", overwrite=True)
    with pytest.raises(ReprogramError):
        fit(bad)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_overwrite_replaces_only_after_the_new_run_finished(finished: Path, tmp_path: Path) -> None:
    run = _copy(finished, tmp_path / "run")
    result = fit(tiny_config(tmp_path, "run", epochs=1, seed=5, overwrite=True))
    assert json.loads((run / "config.json").read_text())["seed"] == 5
    assert not (run / ".replaced").exists()  # the old files are gone once the new run ended
    assert result.metrics["test_accuracy"] is not None


def test_a_directory_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "project"
    theirs.mkdir()
    (theirs / "config.json").write_text('{"database": "prod"}\n')
    with pytest.raises(ReprogramError, match="not a reprogram run"):
        fit(tiny_config(tmp_path, "project"))
    assert (theirs / "config.json").read_text() == '{"database": "prod"}\n'
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("chapter 1")
    with pytest.raises(ReprogramError, match=r"thesis\.tex"):
        fit(tiny_config(tmp_path, "notes", overwrite=True))
    assert (notes / "thesis.tex").read_text() == "chapter 1"


def test_planted_links_in_out_are_not_followed(finished: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = _copy(finished, tmp_path / "run")  # a finished run, to be overwritten
    for name in ("config.json", "metrics.json", "program.safetensors", "checkpoint.pt"):
        os.symlink(victim, out / f".{name}.tmp")  # the old fixed temporary names
    os.symlink(victim, out / "queries.jsonl")  # the black-box journal's name
    fit(tiny_config(tmp_path, "run", epochs=1, optimizer="rgf", overwrite=True))  # journals
    assert victim.read_text() == "precious"
    assert not (out / "queries.jsonl").is_symlink()


def test_artifacts_are_readable_by_others(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = fit(tiny_config(tmp_path, "run", epochs=1)).out
    finally:
        os.umask(old)
    for name in ("config.json", "program.safetensors", "metrics.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name
