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

    a, b = per_set_means(rows, ours, by), per_set_means(rows, theirs, by)
    per_set = {name: a[name] - b[name] for name in sets if name in a and name in b}
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


def per_set_means(rows: list[dict[str, Any]], method: str, by: str = "dataset") -> dict[str, float]:
    """``method``'s test accuracy per set (percent), averaged over the seeds it finished."""
    scores: dict[str, list[float]] = {}
    for r in rows:
        if r["method"] == method:
            scores.setdefault(r[by], []).append(100 * r["test_accuracy"])
    return {name: statistics.mean(v) for name, v in scores.items()}


def plot_paired(
    path: Any,
    rows: list[dict[str, Any]],
    comparisons: list[tuple[str, str, dict[str, Any]]],
    by: str = "dataset",
    label_over: float = 2.0,
) -> bool:
    """One scatter panel per comparison: the peer's per-set accuracy (x) against ours (y).

    Points above the diagonal are sets ours wins; sets that differ by more than
    ``label_over`` points are named. The title carries the paired statistics. Writes nothing
    and returns ``False`` when there is no comparison.
    """
    if not comparisons:
        return False
    from reprogram.figures import subplots

    n = len(comparisons)
    fig, axes = subplots(1, n, figsize=(4.6 * n, 4.9), squeeze=False)
    for ax, (ours, theirs, c) in zip(axes[0], comparisons, strict=True):
        a, b = per_set_means(rows, ours, by), per_set_means(rows, theirs, by)
        names = c["sets"]
        xs, ys = [b[s] for s in names], [a[s] for s in names]
        colours = [
            "tab:green"
            if c["per_set"][s] > TIE
            else "tab:red"
            if c["per_set"][s] < -TIE
            else "grey"
            for s in names
        ]
        lo = min(xs + ys)
        lo = max(0.0, lo - 0.05 * (100 - lo) - 1)
        ax.plot([lo, 100], [lo, 100], color="black", lw=0.8, zorder=1)
        ax.scatter(xs, ys, c=colours, s=22, zorder=2)
        for s, x, y in zip(names, xs, ys, strict=True):
            if abs(y - x) > label_over:
                right = x > (lo + 100) / 2  # name to the left of points on the right half
                ax.annotate(
                    s,
                    (x, y),
                    fontsize=6,
                    xytext=(-3 if right else 3, 3),
                    textcoords="offset points",
                    ha="right" if right else "left",
                )
        ax.set_xlim(lo, 100.5)
        ax.set_ylim(lo, 100.5)
        ax.set_aspect("equal")
        ax.set_xlabel(f"{_short(theirs)}: test accuracy (%)", fontsize=8)
        ax.set_ylabel(f"{_short(ours)}: test accuracy (%)", fontsize=8)
        ax.set_title(
            f"{c['mean_diff']:+.2f} points; W/T/L {c['wins']}/{c['ties']}/{c['losses']}; "
            f"p = {_p_text(c['wilcoxon_p'])}",
            fontsize=9,
        )
        ax.text(0.03, 0.96, "ours better", transform=ax.transAxes, fontsize=7, va="top",
                color="tab:green")  # fmt: skip
        ax.text(0.97, 0.04, "peer better", transform=ax.transAxes, fontsize=7, ha="right",
                color="tab:red")  # fmt: skip
        ax.grid(alpha=0.3)
    fig.suptitle("per set, mean over seeds (paired on the sets both finished)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def _short(method: str, width: int = 48) -> str:
    """A method name short enough for an axis label."""
    return method if len(method) <= width else method[: width - 1] + "…"
