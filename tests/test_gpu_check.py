"""``benchmarks/gpu_check.py`` runs only where a GPU is lent; here its language-model cases
run on the CPU twice (``cpu,cpu``), so the script cannot rot between loans."""

from __future__ import annotations

from pathlib import Path

import gpu_check
import pytest


def test_language_cases_run_and_reproduce_on_the_cpu(tmp_path: Path) -> None:
    data = gpu_check.write_language_data(tmp_path / "data")
    names = [name for name, _, _ in gpu_check.language_cases(data)]
    assert any("regression" in n for n in names) and any("attention" in n for n in names)
    rows = gpu_check.check(
        None, None, tmp_path / "work", 0.05, ("cpu", "cpu"), data, only="causal LM"
    )
    assert [r["case"] for r in rows] == [n for n in names if "causal LM" in n]
    assert all(r["ok"] for r in rows), [r.get("error") for r in rows]
    scores = {r["case"]: r["score"] for r in rows}
    assert scores["dictionary+linear (causal LM, sequences)"] == "test_accuracy"
    assert scores["patch-reprogram+horizon (causal LM, forecast)"] == "test_rmse"
    for r in rows:  # the same device twice: the same figure, and eval reproduces it
        assert r["gpu_minus_cpu"] == 0.0
        assert r["cpu_eval_of_gpu_artifact"] == pytest.approx(r["gpu"][r["score"]], rel=1e-6)
    meta = {"command": "x", "machine_text": "here", "date": "today", "machine": {"cpu_count": 2}}
    text = gpu_check.report(rows, {}, meta)
    assert "| patch-reprogram+horizon (causal LM, forecast) | rmse |" in text
    assert f"{len(rows)} of {len(rows)} cases pass" in text


def test_errors_are_judged_relative_to_the_cpu() -> None:
    assert gpu_check.close(0.80, 0.84, "test_accuracy", 0.05)
    assert not gpu_check.close(0.80, 0.86, "test_accuracy", 0.05)
    assert gpu_check.close(1.02, 1.0, "test_rmse", 0.05)
    assert not gpu_check.close(0.02, 0.01, "test_rmse", 0.05)  # 100% off, though 0.01 apart
    assert gpu_check.headline({"test_accuracy": None, "test_rmse": 1.0}) == "test_rmse"
