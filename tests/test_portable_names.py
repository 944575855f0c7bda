"""A target read from a user's path is recorded by its absolute path, so ``eval`` works from
any working directory; the loader (not the trainer) knows which targets read a path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_config

from reprogram import fit
from reprogram.data import load_target


def _npz(folder: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 12)
    x = (rng.integers(0, 100, (24, 8, 8)) + 120 * y[:, None, None]).astype(np.uint8)
    folder.mkdir()
    np.savez(folder / "task.npz", x_train=x, y_train=y, x_test=x[::2], y_test=y[::2])


def _forecast_csv(folder: Path) -> None:
    lines = ["date,a"] + [
        f"2021-01-{1 + t // 24:02d} {t % 24:02d}:00:00,{math.sin(t / 4):.4f}" for t in range(240)
    ]
    (folder / "series.csv").write_text("\n".join(lines) + "\n")


def _sequences_csv(folder: Path) -> None:
    rows = ["sequence,label"] + [
        f"{'KRHA' if i % 2 else 'DEW'}{'A' * (i % 3)},{i % 2}" for i in range(20)
    ]
    (folder / "seqs.csv").write_text("\n".join(rows) + "\n")


def test_loaders_name_a_relative_path_absolutely_and_keep_the_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _npz(tmp_path / "d")
    _forecast_csv(tmp_path / "d")
    _sequences_csv(tmp_path / "d")
    monkeypatch.chdir(tmp_path)
    where = (tmp_path / "d").resolve()
    assert load_target("npz:d/task.npz").portable_name == f"npz:{where / 'task.npz'}"
    data = load_target("forecast:d/series.csv#lookback=24#horizon=6")
    assert data.name == "forecast:d/series.csv#lookback=24#horizon=6"  # as written
    assert data.portable_name == f"forecast:{where / 'series.csv'}#lookback=24#horizon=6"
    assert load_target("csv:./d/seqs.csv").portable_name == f"csv:{where / 'seqs.csv'}"
    assert load_target("digits").portable_name is None  # a registered set reads no path


@pytest.mark.parametrize("select", ["holdout", "refit"])
def test_a_run_records_the_absolute_path_and_evaluates_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, select: str
) -> None:
    from reprogram.cli import main

    _npz(tmp_path / "d")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    # refit hands the final run a rebuilt target: it keeps the loader's portable name
    fit(tiny_config(tmp_path, "run", target="npz:d/task.npz", shots=6, epochs=1, select=select))
    recorded = json.loads((out / "config.json").read_text())["target"]["name"]
    assert recorded == f"npz:{(tmp_path / 'd' / 'task.npz').resolve()}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # npz:d/task.npz names nothing here
    assert main(["eval", str(out), "--json"]) == 0
