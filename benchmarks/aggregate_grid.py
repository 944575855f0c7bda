"""Aggregate several seeds of ``core_grid.py`` into mean ± std tables and a plot.

Usage:
    python benchmarks/aggregate_grid.py benchmarks/results/core_grid \
        benchmarks/results/core_grid_seed1 benchmarks/results/core_grid_seed2 \
        --out benchmarks/results/core_grid_3seeds
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+", help="folders holding a results.json of core_grid.py")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stores = [json.loads((Path(r) / "results.json").read_text()) for r in args.runs]
    cells: dict[tuple[str, str], list[dict]] = {}
    for store in stores:
        for row in store["rows"]:
            cells.setdefault((row["program"], row["mapping"]), []).append(row)
    rows = []
    for (program, mapping), runs in cells.items():
        val = [r["val_accuracy"] for r in runs]
        test = [r["test_accuracy"] for r in runs]
        rows.append(
            {
                "program": program,
                "mapping": mapping,
                "seeds": len(runs),
                "val_mean": statistics.mean(val),
                "val_std": statistics.stdev(val) if len(val) > 1 else 0.0,
                "test_mean": statistics.mean(test),
                "test_std": statistics.stdev(test) if len(test) > 1 else 0.0,
                "trainable_parameters": runs[0]["trainable_parameters"],
                "train_seconds_median": statistics.median(r["train_seconds"] for r in runs),
            }
        )
    seeds = sorted(s["meta"]["seed"] for s in stores)
    meta = dict(stores[0]["meta"])
    meta.update(seeds=seeds, aggregate_command="python " + " ".join(sys.argv))
    meta["commands"] = [s["meta"]["command"] for s in stores]
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    with open(out / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    best = max(rows, key=lambda r: r["val_mean"])
    lines = [
        f"# EfficientNet-Lite0 → Fashion-MNIST, {meta['shots']} shots per class, seeds {seeds}",
        "",
        "Runs: " + "; ".join(f"`{c}`" for c in meta["commands"]) + "  ",
        f"Aggregated with `{meta['aggregate_command']}`.  ",
        f"{meta['epochs']} epochs, canvas {meta['canvas_size']} px, machine: {meta['machine']}. "
        "Each seed draws its own 100 shots per class and its own validation split; validation "
        "selects the epoch; all 10,000 test images are scored once per run. Mean ± standard "
        "deviation over seeds.",
        "",
        "| program | mapping | val acc | test acc | trained params | median train s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        mark = " **(best by validation)**" if r is best else ""
        lines.append(
            f"| {r['program']} | {r['mapping']}{mark} | {r['val_mean']:.3f} ± {r['val_std']:.3f} "
            f"| {r['test_mean']:.3f} ± {r['test_std']:.3f} | {r['trainable_parameters']:,} "
            f"| {r['train_seconds_median']:.0f} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    plot(rows, out / "accuracy.png", meta)


def plot(rows: list[dict], path: Path, meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    programs = list(dict.fromkeys(r["program"] for r in rows))
    mappings = list(dict.fromkeys(r["mapping"] for r in rows))
    width = 0.8 / len(mappings)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for j, mapping in enumerate(mappings):
        xs, means, stds = [], [], []
        for i, program in enumerate(programs):
            r = next((r for r in rows if r["program"] == program and r["mapping"] == mapping), None)
            if r:
                xs.append(i + (j - (len(mappings) - 1) / 2) * width)
                means.append(r["test_mean"])
                stds.append(r["test_std"])
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=mapping)
    ax.set_xticks(range(len(programs)), programs)
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.set_ylim(0, 1)
    ax.axhline(0.1, color="grey", lw=0.8, ls=":")
    ax.legend(title="mapping", ncols=4, loc="upper left")
    ax.set_title(
        f"EfficientNet-Lite0 → Fashion-MNIST, {meta['shots']} shots/class, seeds {meta['seeds']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
