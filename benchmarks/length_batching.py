"""What grouping token rows by length buys: the same run with ``REPROGRAM_LENGTH_BATCHING=0``
(every batch read as given, as before session 38) and ``=1`` (the default: scoring reads rows
longest first, training reads each random batch in sub-batches of similar length).

    python benchmarks/length_batching.py --out benchmarks/results/length_batching

Each case is one ``reprogram fit`` (or ``baseline``) command run twice in fresh processes,
off then on, with one thread (``OMP_NUM_THREADS=1``, as a bench cell runs); the order
alternates between cases so that a machine whose load drifts touches both modes. The
gradient is the batch's either way (``tests/test_batching.py``), so what changes is the
time and floating-point rounding; where rounding moves a fit (an ill-conditioned probe
start), the scores differ, and the table says so. Writes ``length_batching.json``,
``length_batching.md`` and ``length_batching.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from reprogram_bench.machine import describe, machine

#: (case label, the command's arguments after ``reprogram``) — ``--out`` is added.
CASES: tuple[tuple[str, list[str]], ...] = (
    ("b3db, dictionary, 128 shots, 3 epochs",
     ["fit", "--source", "minilm-l6", "--target", "b3db", "--program", "dictionary",
      "--mapping", "linear", "--mapping-opt", "init=probe", "--shots", "128", "--epochs", "3"]),
    ("amp, dictionary, 128 shots, 3 epochs",
     ["fit", "--source", "minilm-l6", "--target", "amp", "--program", "dictionary",
      "--mapping", "linear", "--mapping-opt", "init=probe", "--shots", "128", "--epochs", "3"]),
    ("solubility, soft prompt, 256 rows, 3 epochs",
     ["fit", "--source", "minilm-l6", "--target", "solubility", "--program", "soft-prompt",
      "--mapping", "linear", "--mapping-opt", "init=probe", "--shots", "256", "--epochs", "3"]),
    ("b3db, fine-tuned MiniLM, 128 shots, 2 epochs",
     ["baseline", "--method", "finetune", "--source", "minilm-l6", "--target", "b3db",
      "--shots", "128", "--epochs", "2"]),
)
SCORES = ("val_loss", "val_accuracy", "val_rmse", "test_accuracy", "test_roc_auc", "test_rmse")


def run(args: list[str], out: Path, mode: str) -> dict[str, Any]:
    """One run in a fresh process; its metrics, wall time and the mode."""
    env = {**os.environ, "REPROGRAM_LENGTH_BATCHING": mode, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "reprogram.cli", *args, "--seed", "0", "--out", str(out),
               "--overwrite", "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics.get("history") or [{}]
    return {
        "mode": "grouped" if mode == "1" else "as given",
        "wall_seconds": round(wall, 1),
        "train_seconds": metrics["train_seconds"],
        "best_epoch": metrics.get("best_epoch"),
        "start_val_loss": history[0].get("val_loss"),
        **{k: metrics[k] for k in SCORES if metrics.get(k) is not None},
    }


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def write(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    """The JSON record, the Markdown table and the bar chart."""
    (out / "length_batching.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "# Grouping token rows by length (session 38)",
        "",
        f"Machine: {meta['machine_text']}; one thread a run; seed 0; measured while two "
        "benchmark processes ran on the same two cores, so the times are upper bounds. "
        "Command:",
        "",
        f"    {meta['command']}",
        "",
        "| case | mode | train s | wall s | speed-up | start val loss | best epoch | "
        "val acc / RMSE | test acc / RMSE | test ROC-AUC |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in dict.fromkeys(r["case"] for r in rows):
        pair = {r["mode"]: r for r in rows if r["case"] == case}
        for mode in ("as given", "grouped"):
            r = pair[mode]
            ratio = pair["as given"]["train_seconds"] / r["train_seconds"]
            val = r.get("val_accuracy", r.get("val_rmse"))
            test = r.get("test_accuracy", r.get("test_rmse"))
            auc = r.get("test_roc_auc")
            lines.append(
                f"| {case} | {mode} | {r['train_seconds']:.0f} | {r['wall_seconds']:.0f} | "
                f"{ratio:.2f} × | {_f(r['start_val_loss'])} | {r['best_epoch']} | "
                f"{_f(val)} | {_f(test)} | {_f(auc)} |"
            )
    (out / "length_batching.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys(r["case"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for k, (mode, colour) in enumerate((("as given", "#999999"), ("grouped", "#1f77b4"))):
        times = [next(r["train_seconds"] for r in rows if r["case"] == c and r["mode"] == mode)
                 for c in cases]
        ax.barh([i + 0.4 * k for i in range(len(cases))], times, height=0.4, color=colour,
                label=mode)
    ax.set_yticks([i + 0.2 for i in range(len(cases))], cases, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("training seconds (one thread)")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(out / "length_batching.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the results")
    parser.add_argument("--runs", default=None,
                        help="folder for the runs' own output (default: OUT/runs)")
    args = parser.parse_args()
    out = Path(args.out)
    runs = Path(args.runs) if args.runs else out / "runs"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (case, command) in enumerate(CASES):
        modes = ("0", "1") if i % 2 == 0 else ("1", "0")
        for mode in modes:
            row = run(command, runs / f"case{i}-{mode}", mode)
            rows.append({"case": case, "command": "reprogram " + " ".join(command), **row})
            print(f"{case} [{row['mode']}]: {row['train_seconds']:.0f} s", flush=True)
    mach = machine()
    meta = {"command": "python benchmarks/length_batching.py --out " + str(args.out),
            "seed": 0, "machine": mach, "machine_text": describe(mach)}
    write(out, rows, meta)


if __name__ == "__main__":
    main()
