"""The scripts in examples/ run, each in a subprocess on its tiny budget (REPROGRAM_EXAMPLE_FAST=1).

The fast mode swaps in ``tiny-random-cnn`` and a few examples: it checks that the scripts
still match the public API, not what they would measure at full size.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("reprogram_digits.py", "reloaded; first test images:"),
        ("baseline_vs_reprogramming.py", "logistic regression on pixels"),
        ("blackbox_zeroth_order.py", "queries sent"),
        ("language_model_over_http.py", "test ROC-AUC"),
    ],
)
def test_example_runs_on_a_tiny_budget(tmp_path: Path, script: str, expected: str) -> None:
    env = {**os.environ, "REPROGRAM_EXAMPLE_FAST": "1"}
    argv = [sys.executable, str(EXAMPLES / script), "--out", str(tmp_path / "run")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expected in proc.stdout, proc.stdout
    assert (tmp_path / "run" / "config.json").is_file()


def test_every_example_is_tested() -> None:
    tested = {
        "reprogram_digits.py",
        "baseline_vs_reprogramming.py",
        "blackbox_zeroth_order.py",
        "language_model_over_http.py",
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested
