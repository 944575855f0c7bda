"""Published UCR numbers on Voice2Series' sets, and where a run's mean differs from them.

V2S Table 2 gives, per set, V2Sa (its own method) and the SOTA-at-the-time column. Its code
selects the epoch on the test set, so V2Sa is optimistic; a mean gap to it is only worth
reading set by set. :func:`gap_shares` splits a method's gap to a published column into each
set's share of the mean (``(published − ours) / number of sets``), so a table can say which
few sets make up the gap.
"""

from __future__ import annotations

import statistics
from typing import Any

# Voice2Series (Yang, Tsai, Chen, ICML 2021, "Voice2Series: Reprogramming Acoustic Models for
# Time Series Classification", Table 2): test accuracy (%) as (SOTA at the time, V2Sa), for
# the 20 of its sets that load offline here. Its code selects the epoch on the test set.
V2S_CITATION = (
    "Yang, Tsai & Chen, Voice2Series: Reprogramming Acoustic Models for Time Series "
    "Classification, ICML 2021, Table 2 (epochs selected on the test set: optimistic)"
)
PUBLISHED: dict[str, tuple[float, float]] = {
    "Coffee": (100.0, 100.0),
    "DistalPhalanxTW": (79.28, 79.14),
    "ECG200": (90.9, 87.0),
    "ECG5000": (94.62, 93.96),
    "Earthquakes": (76.91, 78.42),
    "FordA": (96.44, 100.0),
    "FordB": (92.86, 100.0),
    "GunPoint": (100.0, 96.67),
    "Ham": (83.6, 78.1),
    "HandOutlines": (93.24, 93.24),
    "Haptics": (51.95, 52.27),
    "Herring": (68.75, 68.75),
    "ItalyPowerDemand": (97.06, 97.08),
    "Lightning2": (86.89, 100.0),
    "MiddlePhalanxOutlineCorrect": (72.23, 83.51),
    "MiddlePhalanxTW": (58.69, 65.58),
    "Plane": (100.0, 100.0),
    "ProximalPhalanxOutlineAgeGroup": (88.09, 88.78),
    "ProximalPhalanxOutlineCorrect": (92.1, 91.07),
    "Trace": (100.0, 100.0),
}
V2S_SETS = tuple(PUBLISHED)
COLUMNS = {"SOTA": 0, "V2Sa": 1}
# Means over the same 20 sets of the bake-off results aeon ships (official split, resample 0).
BAKEOFF_CITATION = (
    "time-series classification bake-off results distributed with aeon (Middlehurst, Schäfer "
    "& Bagnall, 'Bake off redux', 2024), official train/test split, resample 0"
)
BAKEOFF_MEANS = {"InceptionTime": 84.68, "HC2": 84.17, "WEASEL-2.0": 84.70}


def gap_shares(
    summary: list[dict[str, Any]], method: str, column: str = "V2Sa"
) -> dict[str, Any] | None:
    """How much of ``method``'s mean gap to a published column each set makes up.

    Args:
        summary: per (method, set) rows with ``method``, ``dataset`` and ``test_mean`` (a
            fraction), as :func:`reprogram_bench.ucr.summarise` gives.
        method: the method to compare.
        column: ``"V2Sa"`` or ``"SOTA"``.

    Returns:
        ``{"sets": n, "gap": points, "shares": [(set, points), ...]}`` with the shares sorted
        largest first (positive: the published number is higher) and summing to ``gap``, the
        published mean minus the method's mean over the ``n`` sets it covers that have a
        published number; ``None`` if it covers none.
    """
    if column not in COLUMNS:
        raise ValueError(f"column must be one of {sorted(COLUMNS)}, got {column!r}")
    index = COLUMNS[column]
    ours = {
        s["dataset"]: 100 * s["test_mean"]
        for s in summary
        if s["method"] == method and s["dataset"] in PUBLISHED
    }
    if not ours:
        return None
    n = len(ours)
    shares = [(d, (PUBLISHED[d][index] - acc) / n) for d, acc in ours.items()]
    shares.sort(key=lambda item: -item[1])
    return {"sets": n, "gap": sum(v for _, v in shares), "shares": shares}


def gap_markdown(summary: list[dict[str, Any]], methods: list[str], top: int = 5) -> list[str]:
    """Markdown lines: per method, its gap to V2Sa's mean and the ``top`` sets that make it up."""
    lines = [
        f"Gap to V2Sa's mean, and the {top} sets that make up most of it (each set's share of "
        "the mean: (V2Sa − ours) / sets, in points; they sum to the gap with the sets not "
        "shown):",
        "",
        "| method | sets | V2Sa − ours (points) | largest shares |",
        "|---|---|---|---|",
    ]
    for method in methods:
        gap = gap_shares(summary, method)
        if gap is None:
            continue
        largest = ", ".join(f"{d} {v:+.2f}" for d, v in gap["shares"][:top])
        lines.append(f"| {method} | {gap['sets']} | {gap['gap']:+.2f} | {largest} |")
    return lines


def published_mean(sets: list[str], column: str = "V2Sa") -> float:
    """The published column's mean (%) over ``sets`` (those with a published number)."""
    known = [d for d in sets if d in PUBLISHED]
    if not known:
        raise ValueError("none of these sets has a published number")
    return statistics.mean(PUBLISHED[d][COLUMNS[column]] for d in known)
