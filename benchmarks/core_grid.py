"""Every program × mapping on one task: EfficientNet-Lite0 → Fashion-MNIST, K shots per class.

Usage:
    python benchmarks/core_grid.py [--shots 100] [--epochs 10] [--canvas-size 128] [--seed 0]
        [--out benchmarks/results/core_grid]

Writes results.json, results.csv and results.md (with the command, seed and machine) to --out.
Validation selects the epoch; the test split (all 10,000 images) is scored once per cell.
Cells already in results.json are skipped, so a killed run continues where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

from reprogram_bench.machine import describe, machine

from reprogram import FitConfig, fit

PROGRAMS = ("border", "resize-pad", "full")
MAPPINGS = ("random", "flm", "ilm", "linear", "semantic")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shots", type=int, default=100)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--canvas-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/core_grid")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "results.json"
    earlier = json.loads(store.read_text()) if store.exists() else {"rows": []}
    rows = earlier["rows"]
    done = {(r["program"], r["mapping"]) for r in rows}
    now = {
        "command": "python " + " ".join(sys.argv),
        "machine": describe(machine()),
        "date": time.strftime("%Y-%m-%d"),
    }
    meta = earlier.get("meta") or {
        **now,
        "seed": args.seed,
        "shots": args.shots,
        "epochs": args.epochs,
        "canvas_size": args.canvas_size,
    }
    if "meta" in earlier and not all(cell in done for cell in _cells()):
        meta.setdefault("later_runs", []).append(now)  # cells added later: their own record
    for program, mapping in _cells():
        if (program, mapping) in done:
            continue
        run_dir = out / "runs" / f"{program}-{mapping}"
        shutil.rmtree(run_dir, ignore_errors=True)
        config = FitConfig(
            source="efficientnet-lite0",
            target="fashion-mnist",
            program=program,
            mapping=mapping,
            program_options={"canvas_size": args.canvas_size},
            shots=args.shots,
            epochs=args.epochs,
            seed=args.seed,
            out=str(run_dir),
            progress=False,
            plots=False,
        )
        start = time.perf_counter()
        m = fit(config).metrics
        rows.append(
            {
                "program": program,
                "mapping": mapping,
                "val_accuracy": m["val_accuracy"],
                "test_accuracy": m["test_accuracy"],
                "trainable_parameters": m["trainable_parameters"],
                "train_seconds": m["train_seconds"],
                "wall_seconds": round(time.perf_counter() - start, 1),
                "best_epoch": m["best_epoch"],
                "epochs": m["epochs"],
                "date": now["date"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        shutil.rmtree(run_dir, ignore_errors=True)
        store.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    write_tables(out, rows, meta)


def _cells() -> list[tuple[str, str]]:
    return [(p, m) for p in PROGRAMS for m in MAPPINGS]


def write_tables(out: Path, rows: list[dict], meta: dict) -> None:
    with open(out / "results.csv", "w", newline="") as fh:
        fields = list(dict.fromkeys(k for r in rows for k in r))  # later cells add "date"
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"# EfficientNet-Lite0 → Fashion-MNIST, {meta['shots']} shots per class",
        "",
        f"Command: `{meta['command']}`  ",
        f"Seed {meta['seed']}, {meta['epochs']} epochs, canvas {meta['canvas_size']} px, "
        f"machine: {meta['machine']}, {meta['date']}.  ",
        "Validation (20% of the shots, stratified) selects the epoch; test = all 10,000 test "
        "images, scored once. Single seed: a 200-image validation set is about ±3 points.",
        *[
            f"Cells added later by `{r['command']}` on {r['date']} ({r['machine']})."
            for r in meta.get("later_runs", [])
        ],
        "",
        "| program | mapping | val acc | test acc | trained params | train s | best epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['program']} | {r['mapping']} | {r['val_accuracy']:.3f} | "
            f"{r['test_accuracy']:.3f} | {r['trainable_parameters']:,} | "
            f"{r['train_seconds']:.0f} | {r['best_epoch']}/{r['epochs']} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
