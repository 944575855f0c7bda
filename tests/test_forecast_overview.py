"""``benchmarks/forecast_overview.py``: one table of the forecasting grid from several suites."""

from __future__ import annotations

import json
from pathlib import Path

import forecast_overview as ov
import pytest
from reprogram_bench.forecast import ABLATIONS, REPROGRAMMED


def _row(method: str, horizon: int, seed: int, mse: float, options: str = "",
         dataset: str = "ETTh1", fraction: float = 1.0) -> dict[str, object]:
    return {"dataset": dataset, "horizon": horizon, "fraction": fraction, "method": method,
            "seed": seed, "test_mse": mse, "test_mae": mse, "train_seconds": 10.0,
            "target": f"forecast:{dataset}#lookback=512#horizon={horizon}{options}"}


def _suite(folder: Path, rows: list[dict[str, object]]) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"rows": rows}))
    return folder


def test_roles_come_from_the_first_suite_and_pairs_keep_protocols_apart(
        tmp_path: Path) -> None:
    removed = ABLATIONS["LM removed"]
    new = [_row(m, h, s, base + 0.01 * s, "#val_stride=8#sample=16")
           for m, base in ((REPROGRAMMED, 0.40), (removed, 0.38))
           for h in (96, 192) for s in (0, 1, 2)]
    new.append(_row("some-other+method", 96, 0, 0.1))
    old = [_row(REPROGRAMMED, 96, 0, 0.90, "#stride=16#val_stride=8"),
           _row(removed, 96, 0, 0.95, "#stride=16#val_stride=8"),
           _row(ABLATIONS["LM random"], 96, 0, 0.99, "#stride=16#val_stride=8"),
           *[_row("dlinear", h, s, 0.395) for h in (96, 192) for s in (0, 1, 2)]]
    a, b = _suite(tmp_path / "new", new), _suite(tmp_path / "old", old)
    out = tmp_path / "ov"
    ov.main(["--out", str(out), str(a), str(b)])

    summary = json.loads((out / "overview.json").read_text())["summary"]
    by_role = {s["role"]: s for s in summary}
    # the LM's cells come from the first folder only: its old 0.90 cell is not averaged in
    assert by_role["reprogrammed LM"]["mean_mse"] == pytest.approx(0.41)
    assert by_role["reprogrammed LM"]["suite"] == "new"
    assert by_role["LM random"]["horizons"] == [96] and not by_role["LM random"]["all_horizons"]
    text = (out / "overview.md").read_text()
    # the removal is the best row covering both horizons; the random copy's one cell is marked
    assert "| ETTh1 | 0.410 | **0.390** | 0.990 (H 96; 1 seed) | – |" in text
    assert "`some-other+method`" in text  # named as left out, not dropped silently
    # the published anchors stand under the every-window table of a set that has them
    assert "ETTh1: GPT4TS 0.427, PatchTST 0.413" in text

    paired = {(p["protocol"], p["ablation"]): p for p in
              json.loads((out / "overview.json").read_text())["paired"]}
    fresh = paired[("#sample=16#val_stride=8", "LM removed")]
    assert (fresh["pairs"], fresh["lm_better"], fresh["lm_worse"]) == (6, 0, 6)
    assert fresh["mean_diff"] == pytest.approx(-0.02)
    assert fresh["beyond_spread"] == {"96": "LM removed", "192": "LM removed"}
    fixed = paired[("#stride=16#val_stride=8", "LM removed")]
    assert (fixed["pairs"], fixed["mean_diff"]) == (1, pytest.approx(0.05))
    assert ("#sample=16#val_stride=8", "LM random") not in paired  # no cell of it there
    assert (out / "mse_by_horizon.png").stat().st_size > 0


def test_a_folder_without_results_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no results\.json"):
        ov.main(["--out", str(tmp_path / "ov"), str(tmp_path)])
