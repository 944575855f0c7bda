"""Shared by ``selection_oracle.py`` and ``epoch_oracle.py``: the resumable loop over cells,
and a per-set table and plot of test accuracy under several ways of choosing, beside V2Sa.

A cell is a JSON-able dict with ``dataset``, ``seed`` and ``bench_test_accuracy`` (the bench's
own figure, %), whatever else its script records. A :class:`Report` says how to score a cell
under each choice (``scores``) and which of those choices is the honest one, which must equal
the bench's figure cell by cell.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from reprogram_bench.machine import describe, machine
from reprogram_bench.published import PUBLISHED, V2S_SETS

Cell = dict[str, Any]


@dataclass(frozen=True)
class Report:
    """How a script's cells become ``results.json``, ``results.md`` and ``oracle_per_set.png``.

    ``columns``: score key → column label; ``honest``: the key checked against the bench;
    ``plotted``: (key, marker) pairs drawn per set; ``summary(means, v2sa)``: closing line.
    """

    title: str
    describe: Callable[[dict[str, Any]], list[str]]
    columns: dict[str, str]
    honest: str
    scores: Callable[[Cell], dict[str, float]]
    plotted: tuple[tuple[str, str], ...]
    plot_title: str
    summary: Callable[[dict[str, float], float], str]
    ylim: tuple[float, float] = (30, 103)


def arguments(
    description: str, seeds: str, method: str, epochs: int | None = None
) -> argparse.Namespace:
    """``--out``, ``--sets`` (Voice2Series' 20 by default, checked), ``--seeds``, ``--method``,
    and ``--epochs`` (default ``epochs``) for a script that trains a number of epochs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sets", default=",".join(V2S_SETS))
    parser.add_argument("--seeds", default=seeds)
    if epochs is not None:
        parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--method", default=method)
    args = parser.parse_args()
    args.sets = [s for s in args.sets.split(",") if s]
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    unknown = sorted(set(args.sets) - set(PUBLISHED))
    if unknown:
        raise SystemExit(f"not a Voice2Series set: {', '.join(unknown)}")
    return args


def run_all(
    args: argparse.Namespace,
    report: Report,
    run: Callable[[str, int], Cell],
    **meta: Any,
) -> None:
    """Run every missing cell (``run(dataset, seed)``), rewriting the report after each."""
    (args.out / "cells").mkdir(parents=True, exist_ok=True)
    meta = {
        "command": "python " + " ".join(sys.argv),
        "method": args.method,
        "seeds": args.seeds,
        **meta,
        "machine": machine(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    cells = []
    for seed in args.seeds:
        for dataset in args.sets:
            path = args.out / "cells" / f"{dataset}_seed{seed}.json"
            if not path.exists():
                cell = run(dataset, seed)
                path.write_text(json.dumps(cell, indent=1))
                print(f"{dataset} seed {seed} done", flush=True)
            cells.append(json.loads(path.read_text()))
            write_report(args.out, cells, meta, report)


def write_report(out: Path, cells: list[Cell], meta: dict[str, Any], report: Report) -> None:
    """``results.json``, ``results.md`` and ``oracle_per_set.png`` from the finished cells."""
    sets = [d for d in V2S_SETS if any(c["dataset"] == d for c in cells)]
    keys = list(report.columns)
    per_set: dict[str, dict[str, float]] = {}
    for d in sets:
        mine = [report.scores(c) for c in cells if c["dataset"] == d]
        per_set[d] = {k: statistics.fmean(s[k] for s in mine) for k in keys}
    means = {k: statistics.fmean(per_set[d][k] for d in sets) for k in keys}
    mismatched = [
        f"{c['dataset']} seed {c['seed']}"
        for c in cells
        if abs(report.scores(c)[report.honest] - c["bench_test_accuracy"]) > 1e-6
    ]
    check = "all equal" if not mismatched else "MISMATCH: " + ", ".join(mismatched)
    v2sa = statistics.fmean(PUBLISHED[d][1] for d in sets)
    out.joinpath("results.json").write_text(
        json.dumps({"meta": meta, "cells": cells, "per_set": per_set, "means": means}, indent=1)
    )
    m = meta["machine"]
    lines = [
        f"# {report.title}",
        "",
        f"Command: `{meta['command']}`",
        f"Seeds {', '.join(map(str, meta['seeds']))}; machine: {describe(m)} ({m['platform']}).",
        "",
        *report.describe(meta),
        "",
        f"Test accuracy (%), mean over seeds. Columns chosen *by test* are diagnostics of a "
        f"protocol, not results. Column 1 is the bench's own figure, checked cell by cell: "
        f"{check}.",
        "",
        *[f"{i}. {report.columns[k]}" for i, k in enumerate(keys, start=1)],
        "",
        "| set | V2Sa | " + " | ".join(map(str, range(1, len(keys) + 1))) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for d in sets:
        row = " | ".join(f"{per_set[d][k]:.2f}" for k in keys)
        lines.append(f"| {d} | {PUBLISHED[d][1]:.2f} | {row} |")
    lines.append(
        f"| **mean ({len(sets)} sets)** | **{v2sa:.2f}** | "
        + " | ".join(f"**{means[k]:.2f}**" for k in keys)
        + " |"
    )
    lines += ["", report.summary(means, v2sa), ""]
    out.joinpath("results.md").write_text("\n".join(lines))
    plot(out, sets, per_set, report)


def plot(out: Path, sets: list[str], per_set: dict[str, dict[str, float]], report: Report) -> None:
    """Per set: each plotted choice's test accuracy, and V2Sa's published figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    xs = np.arange(len(sets))
    for key, marker in report.plotted:
        ax.plot(xs, [per_set[d][key] for d in sets], marker, label=report.columns[key])
    ax.plot(xs, [PUBLISHED[d][1] for d in sets], "k_", markersize=14, label="V2Sa (published)")
    ax.set_xticks(xs, sets, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(report.plot_title)
    ax.set_ylim(*report.ylim)
    ax.legend(fontsize=8, loc="lower center", ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "oracle_per_set.png", dpi=120)
    plt.close(fig)
