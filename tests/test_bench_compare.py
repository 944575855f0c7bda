"""Paired comparison over sets: differences, wins/ties/losses, Wilcoxon, per-seed means."""

from __future__ import annotations

from typing import Any

import pytest
from reprogram_bench.compare import markdown, paired, wilcoxon_p


def rows(method: str, scores: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Result rows of ``method``: per set, one test accuracy (0..1) per seed 0, 1, …"""
    return [
        {"method": method, "dataset": d, "seed": s, "test_accuracy": a}
        for d, accs in scores.items()
        for s, a in enumerate(accs)
    ]


def test_paired_counts_wins_ties_losses_and_means_per_seed() -> None:
    ours = rows("ours", {"A": [0.9, 0.8], "B": [0.5, 0.5], "C": [0.6, 0.6], "D": [0.7]})
    theirs = rows("peer", {"A": [0.7, 0.8], "B": [0.5, 0.5], "C": [0.7, 0.7]})
    c = paired(ours + theirs, "ours", "peer", ["A", "B", "C", "D"])
    assert c is not None and c["sets"] == ["A", "B", "C"]  # D: the peer has no score there
    assert c["per_set"] == pytest.approx({"A": 10.0, "B": 0.0, "C": -10.0})
    assert (c["wins"], c["ties"], c["losses"]) == (1, 1, 1) and c["mean_diff"] == pytest.approx(0)
    # seed 0: +20, 0, -10 → +3.33; seed 1: 0, 0, -10 → -3.33
    assert c["per_seed"] == pytest.approx({0: 10 / 3, 1: -10 / 3})
    assert c["wilcoxon_p"] is None  # two untied sets: no test
    assert paired(ours + theirs, "ours", "peer", ["D"]) is None
    (line,) = [x for x in markdown([("ours", "peer", c)]) if x.startswith("| ours")]
    assert "| 3 | +0.00 | 1 / 1 / 1 | – | seed 0: +3.33, seed 1: -3.33 |" in line


def test_wilcoxon_matches_scipy_and_needs_six_untied_sets() -> None:
    from scipy.stats import wilcoxon

    diffs = [1.0, 2.5, -0.5, 3.0, 4.0, 0.0, 2.0, -1.5]
    expected = wilcoxon([d for d in diffs if d != 0.0]).pvalue
    assert wilcoxon_p(diffs) == pytest.approx(expected)
    assert wilcoxon_p([1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.001]) is None  # five untied
    assert wilcoxon_p([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) == pytest.approx(0.03125)


def test_tiny_p_values_print_as_below_a_thousandth() -> None:
    ours = rows("ours", {f"S{i}": [0.9] for i in range(20)})
    theirs = rows("peer", {f"S{i}": [0.9 - 0.01 * (i + 1)] for i in range(20)})
    c = paired(ours + theirs, "ours", "peer", [f"S{i}" for i in range(20)])
    assert c is not None and c["wilcoxon_p"] < 0.0005
    (line,) = [x for x in markdown([("ours", "peer", c)]) if x.startswith("| ours")]
    assert "| 20 / 0 / 0 | < 0.001 |" in line


def test_per_set_means_and_paired_plot(tmp_path: Any) -> None:
    from reprogram_bench.compare import per_set_means, plot_paired

    ours = rows("ours", {"A": [0.9, 0.8], "B": [0.5, 0.5], "C": [0.6]})
    theirs = rows("peer", {"A": [0.7, 0.8], "B": [0.5, 0.5], "C": [0.7]})
    assert per_set_means(ours, "ours") == pytest.approx({"A": 85.0, "B": 50.0, "C": 60.0})
    c = paired(ours + theirs, "ours", "peer", ["A", "B", "C"])
    assert not plot_paired(tmp_path / "none.png", ours + theirs, [])
    assert not (tmp_path / "none.png").exists()
    assert plot_paired(
        tmp_path / "p.png", ours + theirs, [("ours", "peer", c), ("ours", "peer", c)]
    )
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
