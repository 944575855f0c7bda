"""One ``bench ucr-v2s`` table from several runs of the same methods on disjoint cells.

A long suite is often run in pieces: one seed first, the other seeds later, the slow sets in
another session. This script joins the finished rows of such runs into one folder with the
suite's own tables, plots and paired comparisons (:func:`reprogram_bench.ucr.write_results`),
after checking that they can be joined:

- every run used the same methods, epochs, ``--max-train`` and ``--select`` (so the same
  seed draws the same split and the same training recipe in each);
- a cell (method, set, seed) finished in two runs must have the same test score in both.

The merged ``results.json`` keeps each part's command, date and machine, since parts may have
run on different machines (whose last-bit differences move long SGD runs; see
:mod:`reprogram_bench.machine`).

    python benchmarks/merge_suites.py benchmarks/results/bench_ucr/v2s_random_fit \\
        benchmarks/results/bench_ucr/v2s_random_fit_17 \\
        benchmarks/results/bench_ucr/v2s_random_fit_3big \\
        --out benchmarks/results/bench_ucr/v2s_random_fit_all
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reprogram_bench.machine import describe
from reprogram_bench.ucr import V2S_SETS, write_results

SHARED = ("methods", "epochs", "max_train", "select")


def load(folder: Path) -> dict[str, Any]:
    path = folder / "results.json"
    if not path.is_file():
        sys.exit(f"{folder}: no results.json (run the suite there first).")
    return json.loads(path.read_text())


def merge(parts: list[dict[str, Any]], names: list[str]) -> tuple[list[dict[str, Any]], dict]:
    """The joined rows and settings; exits with a message when the parts cannot be joined."""
    first = {"select": "holdout", **parts[0]["meta"]["settings"]}
    for name, part in zip(names[1:], parts[1:], strict=True):
        settings = {"select": "holdout", **part["meta"]["settings"]}
        clash = [k for k in SHARED if settings.get(k) != first.get(k)]
        if clash:
            sys.exit(
                f"{name} differs from {names[0]} in {', '.join(clash)}: "
                + "; ".join(f"{k} {settings.get(k)!r} vs {first.get(k)!r}" for k in clash)
            )
    cells: dict[tuple[str, str, int], dict[str, Any]] = {}
    for name, part in zip(names, parts, strict=True):
        for row in part["rows"]:
            key = (row["method"], row["dataset"], int(row["seed"]))
            if key in cells and cells[key]["test_accuracy"] != row["test_accuracy"]:
                sys.exit(f"{key} scored {row['test_accuracy']} in {name} but differently before.")
            cells.setdefault(key, row)
    found = {d for _, d, _ in cells}
    sets = [d for d in V2S_SETS if d in found] + sorted(found - set(V2S_SETS))
    seeds = sorted({s for _, _, s in cells})
    rows = sorted(
        cells.values(),
        key=lambda r: (sets.index(r["dataset"]), r["seed"], first["methods"].index(r["method"])),
    )
    settings = {**first, "sets": sets, "seeds": seeds}
    return rows, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="suite folders (results.json)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the merged tables")
    args = parser.parse_args()
    parts = [load(f) for f in args.runs]
    rows, settings = merge(parts, [str(f) for f in args.runs])
    meta = {
        **parts[0]["meta"],
        "command": "python " + " ".join(sys.argv),
        "settings": settings,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "parts": [
            {
                "folder": str(folder),
                "command": p["meta"]["command"],
                "date": p["meta"]["date"],
                "machine": p["meta"]["machine"],
                "cells": len(p["rows"]),
            }
            for folder, p in zip(args.runs, parts, strict=True)
        ],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out, rows, settings, meta)
    lines = [
        "",
        "## Parts joined here",
        "",
        "The machine line above is the first part's; each part ran as below.",
        "",
    ]
    for part in meta["parts"]:
        lines.append(
            f"- `{part['folder']}` ({part['cells']} cells, {part['date']}, "
            f"{describe(part['machine'])}, {part['machine'].get('platform', '?')}): "
            f"`{part['command']}`"
        )
    with (args.out / "results.md").open("a") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(rows)} cells from {len(parts)} runs: {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
