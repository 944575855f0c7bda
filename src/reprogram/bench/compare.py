"""Paired comparison of two methods over data sets: the statistics one mean hides.

A mean over 20 sets can move by a point with one seed or one rule, so a suite also reports,
for each reprogramming method against each peer in the same run, on the sets both finished:

- the mean over sets of the per-set difference in test accuracy (percentage points);
- wins / ties / losses over sets (a tie: per-set means within 0.005 points, i.e. equal as
  printed);
- the two-sided Wilcoxon signed-rank p-value over the per-set differences (Demšar's
  recommendation for comparing two classifiers over many data sets; ties dropped; ``None``
  with fewer than 6 untied sets, where the test cannot reach 0.05);
- the mean difference per seed, over the sets that seed finished for both methods, so the
  spread of the headline over seeds is visible.
"""

from __future__ import annotations

import statistics
from typing import Any

TIE = 0.005  # percentage points: per-set means equal to the printed two decimals
MIN_UNTIED = 6  # below this a two-sided signed-rank test cannot reach p < 0.05


def paired(
    rows: list[dict[str, Any]], ours: str, theirs: str, sets: list[str], by: str = "dataset"
) -> dict[str, Any] | None:
    """``ours`` against ``theirs`` over ``sets``; ``None`` when they share no finished set.

    Args:
        rows: result rows (``method``, ``by``, ``seed``, ``test_accuracy`` in 0..1).
        ours, theirs: method names as in ``rows``.
        sets: the sets to compare on, in order; those either method lacks are skipped.
    Returns:
        ``sets`` (the shared ones), ``mean_diff`` (points), ``wins``/``ties``/``losses``,
        ``wilcoxon_p`` (or ``None``), ``per_set`` (set → difference in points) and
        ``per_seed`` (seed → mean difference in points over the sets that seed covers).
    """
    acc: dict[tuple[str, Any, int], float] = {
        (r["method"], r[by], r["seed"]): 100 * r["test_accuracy"] for r in rows
    }

    def mean_of(method: str, name: str) -> float | None:
        scores = [v for (m, d, _), v in acc.items() if m == method and d == name]
        return statistics.mean(scores) if scores else None

    per_set: dict[str, float] = {}
    for name in sets:
        a, b = mean_of(ours, name), mean_of(theirs, name)
        if a is not None and b is not None:
            per_set[name] = a - b
    if not per_set:
        return None
    diffs = list(per_set.values())
    seeds = sorted({s for (m, _, s) in acc if m in (ours, theirs)})
    per_seed: dict[int, float] = {}
    for seed in seeds:
        both = [
            acc[(ours, d, seed)] - acc[(theirs, d, seed)]
            for d in per_set
            if (ours, d, seed) in acc and (theirs, d, seed) in acc
        ]
        if both:
            per_seed[seed] = statistics.mean(both)
    return {
        "sets": list(per_set),
        "mean_diff": statistics.mean(diffs),
        "wins": sum(d > TIE for d in diffs),
        "ties": sum(abs(d) <= TIE for d in diffs),
        "losses": sum(d < -TIE for d in diffs),
        "wilcoxon_p": wilcoxon_p(diffs),
        "per_set": per_set,
        "per_seed": per_seed,
    }


def wilcoxon_p(diffs: list[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value of ``diffs`` (ties at zero dropped), or ``None``
    with fewer than :data:`MIN_UNTIED` non-zero differences."""
    untied = [d for d in diffs if abs(d) > TIE]
    if len(untied) < MIN_UNTIED:
        return None
    from scipy.stats import wilcoxon

    return float(wilcoxon(untied, alternative="two-sided").pvalue)


def _p_text(p: float | None) -> str:
    """A p-value for a table: three decimals, ``< 0.001`` below that, ``–`` when not computed."""
    if p is None:
        return "–"
    return "< 0.001" if p < 0.0005 else f"{p:.3f}"


def markdown(comparisons: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """Markdown lines: one table row per ``(ours, theirs, paired(...))``; empty for none."""
    if not comparisons:
        return []
    lines = [
        "Paired over sets (per-set mean over seeds; ties within 0.005 points; Wilcoxon "
        "signed-rank, two-sided, ties dropped, none with fewer than 6 untied sets):",
        "",
        "| method | against | sets | mean difference (points) | wins / ties / losses | "
        "Wilcoxon p | mean difference per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for ours, theirs, c in comparisons:
        p = _p_text(c["wilcoxon_p"])
        seeds = ", ".join(f"seed {s}: {d:+.2f}" for s, d in c["per_seed"].items())
        lines.append(
            f"| {ours} | {theirs} | {len(c['sets'])} | {c['mean_diff']:+.2f} | "
            f"{c['wins']} / {c['ties']} / {c['losses']} | {p} | {seeds} |"
        )
    return lines
