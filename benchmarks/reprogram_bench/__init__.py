"""Benchmark suites: task accuracy (vision, ucr-v2s, blackbox) and speed (efficiency)."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reprogram.errors import ReprogramError
from reprogram.selection import selection_seconds


def write_csv(
    path: Path, rows: Sequence[dict[str, Any]], fields: Sequence[str] | None = None
) -> None:
    """Write ``rows`` as CSV with a header (``fields``: the columns; default the first row's)."""
    columns = list(fields) if fields is not None else list(rows[0])
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def selection_text(
    select: str, examples: str = "training series", per_class: bool = True
) -> str:
    """How a suite's cells select, in words, for its table's header (``select``: a
    ``--select`` value; ``examples``: what the training examples are called;
    ``per_class``: False where every task is a regression, which has no classes)."""
    from reprogram.selection import ONE_SE, is_refit, selection_rule

    whose = "each class's " if per_class else "the "
    holdout = f"20% of {whose}{examples} validate and select (epoch, penalty)"
    rule = ""
    if selection_rule(select) == ONE_SE:
        rule = (
            " by the one-standard-error rule (the earliest epoch, or the strongest penalty, "
            "within one binomial standard error of the best validation accuracy)"
        )
    if select == "holdout":
        return holdout
    if is_refit(select):
        return f"{holdout}{rule}, then one refit on all {examples}"
    k = select.split(":")[1]
    return (
        f"{k}-fold cross-validation on the {examples} selects (epoch, penalty){rule}, then "
        "one refit on all of them"
    )


def palette(methods: Sequence[str]) -> dict[str, Any]:
    """A colour per method: matplotlib's 10, or tab20's 20 when 10 would repeat."""
    import matplotlib

    many = len(methods) > 10
    return {
        m: matplotlib.colormaps["tab20"](j % 20) if many else f"C{j}"
        for j, m in enumerate(methods)
    }


def legend_below(fig: Any, axes: Sequence[Any], ncol: int) -> float:
    """One legend for every panel in ``axes``, below them (``ncol`` columns; a label drawn in
    several panels listed once). Returns the bottom margin to leave it in
    ``fig.tight_layout(rect=(0, bottom, 1, 1))``."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=ncol, fontsize=7)
    rows = -(-len(seen) // ncol)
    return min(0.05 * rows + 0.02, 0.4)


def cell_seconds(directory: Path, metrics: dict[str, Any]) -> float:
    """A bench cell's whole training price: its selection runs (k-fold, refit; see
    :func:`reprogram.selection.selection_seconds`) plus the final run's ``train_seconds``."""
    return round(metrics["train_seconds"] + selection_seconds(directory), 3)


def ints(text: str, flag: str) -> tuple[int, ...]:
    """Comma-separated integers of a ``--shots``/``--seeds``/``--sizes`` flag (positive, but
    seeds may be 0)."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ReprogramError(f"{flag} takes comma-separated integers, got {text!r}.") from None
    if not values or any(v < 1 and flag != "--seeds" for v in values):
        raise ReprogramError(f"{flag} needs positive integers, got {text!r}.")
    return values


_OPTION_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def split_methods(text: str) -> tuple[str, ...]:
    """Split a ``--methods`` list on commas, keeping each method's own ``key=value`` options.

    ``"full+linear:init=probe,lr=0.001,linear-probe"`` → ``("full+linear:init=probe,lr=0.001",
    "linear-probe")``: a piece that starts with ``key=`` (a plain option name) continues the
    method before it when that one has options, also when it ends in ``@SOURCE``
    (``lr=0.001@features:efficientnet-lite0``).
    """
    methods: list[str] = []
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        key, sep, _ = piece.partition("=")
        if methods and sep and _OPTION_KEY.fullmatch(key) and ":" in methods[-1]:
            methods[-1] += "," + piece
        else:
            methods.append(piece)
    return tuple(methods)


def md_cell(text: str) -> str:
    """``text`` as one Markdown table cell: a ``|`` inside it (``words=no|yes``) is escaped,
    so it does not split the row."""
    return text.replace("|", "\\|")
