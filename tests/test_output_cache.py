"""Source outputs kept per example for a program that trains nothing (``text``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reprogram import FitConfig, fit
from reprogram.errors import ReprogramError
from reprogram.output_cache import LIMIT_ENV, OutputCache, cache_limit


def test_rows_are_computed_once_and_the_bound_holds() -> None:
    seen: list[int] = []

    def compute(x: torch.Tensor) -> torch.Tensor:
        seen.append(len(x))
        return x.float().sum(dim=1, keepdim=True).repeat(1, 3)

    cache = OutputCache(limit_bytes=4 * 3 * 4)  # room for four rows of three float32
    a = torch.tensor([[1, 2], [3, 4], [1, 2]])
    assert torch.equal(cache(a, compute), torch.tensor([[3.0] * 3, [7.0] * 3, [3.0] * 3]))
    assert seen == [3] and len(cache) == 2  # the repeated row is kept once
    b = torch.tensor([[3, 4], [5, 6], [7, 8], [9, 9]])
    assert torch.equal(cache(b, compute)[:, 0], torch.tensor([7.0, 11.0, 15.0, 18.0]))
    assert seen == [3, 3] and len(cache) == 4 and cache.held_bytes == 48  # full: 9,9 not kept
    assert cache.record() == {"rows": 4, "bytes": 48, "hits": 1, "misses": 6}
    cache(torch.tensor([[9, 9]]), compute)
    assert seen == [3, 3, 1]


def test_the_bound_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LIMIT_ENV, "1234")
    assert cache_limit() == 1234
    monkeypatch.setenv(LIMIT_ENV, "1GB")
    with pytest.raises(ReprogramError, match="whole number of bytes"):
        cache_limit()


def _labelled_csv(tmp_path: Path) -> str:
    rng = np.random.default_rng(4)
    rows = ["sequence,label"]
    for i in range(80):
        label = i % 2
        letters = list("ACDK") if label else list("ACDE")
        rows.append(f"{''.join(rng.choice(letters, int(rng.integers(4, 12))))},{label}")
    path = tmp_path / "seqs.csv"
    path.write_text("\n".join(rows) + "\n")
    return f"csv:{path}"


def _run(target: str, out: Path) -> dict:
    config = FitConfig(source="tiny-random-lm", target=target, program="text", mapping="linear",
                       epochs=3, batch_size=16, out=str(out), progress=False, plots=False)
    return fit(config).metrics


def test_text_training_reads_the_source_once_per_example_and_scores_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _labelled_csv(tmp_path)
    cached = _run(target, tmp_path / "cached")
    record = cached["source_output_cache"]
    n = cached["splits"]
    examples = n["train"] + n["val"] + n["test"]
    assert record["misses"] <= examples and record["rows"] <= examples
    assert record["hits"] >= 2 * n["train"]  # epochs 2 and 3 read no source
    monkeypatch.setenv(LIMIT_ENV, "0")
    plain = _run(target, tmp_path / "plain")
    assert "source_output_cache" not in plain
    assert cached["best_epoch"] == plain["best_epoch"]
    for key in ("test_accuracy", "test_loss", "val_loss"):
        assert cached[key] == pytest.approx(plain[key], abs=1e-5), key
