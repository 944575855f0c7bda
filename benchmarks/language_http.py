"""A language model trained through queries over HTTP, against the same run in-process.

Starts ``reprogram serve --source SOURCE`` as its own process (as a user would), then runs the
same sequences-bench cell twice per seed: through ``query:SOURCE`` in this process and through
``http://127.0.0.1:PORT`` (the served model; the tokenizer and input embeddings are built here
and checked against the server's). Both runs use the same method, seed and protocol as
``reprogram bench sequences``; they should agree to the last digit, and the difference in
training time is what HTTP costs. Writes ``results.json``, ``results.csv``, ``results.md``
and ``seconds.png`` to ``--out``.

    OMP_NUM_THREADS=1 python benchmarks/language_http.py \
        --out benchmarks/results/language_http --task amp-tm --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from reprogram_bench.machine import describe, machine
from reprogram_bench.sequences import Cell, run_cell

METHOD = "soft-prompt+linear:init=probe,optimizer=rgf,subspace=32,lr=0.1"


def start_server(source: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``reprogram serve --source SOURCE --port PORT`` in its own process, once it answers."""
    command = [sys.executable, "-m", "reprogram.cli", "serve", "--source", source]
    command += ["--port", str(port)]
    handle = log.open("wb")
    server = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited ({server.returncode}); see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"the server did not answer within 300 s; see {log}")


def row(route: str, cell: Cell, metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "route": route,
        "task": cell.task,
        "seed": cell.seed,
        "shots": cell.shots,
        "test_roc_auc": metrics.get("test_roc_auc"),
        "test_accuracy": metrics.get("test_accuracy"),
        "best_epoch": metrics.get("best_epoch"),
        "queries": metrics.get("queries"),
        "train_seconds": metrics.get("train_seconds"),
        "wall_seconds": round(seconds, 1),
    }


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted({r["seed"] for r in rows})
    fig, ax = plt.subplots(figsize=(5, 3))
    width = 0.38
    for k, route in enumerate(("in-process", "http")):
        values = [
            next(r["train_seconds"] for r in rows if r["seed"] == s and r["route"] == route)
            for s in seeds
        ]
        ax.bar([s + (k - 0.5) * width for s in seeds], values, width, label=route)
    ax.set_xticks(seeds, [f"seed {s}" for s in seeds])
    ax.set_ylabel("training seconds")
    ax.set_title("query-only soft prompt: in-process vs HTTP")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--source", default="minilm-l6")
    parser.add_argument("--task", default="amp-tm")
    parser.add_argument("--shots", type=int, default=32)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    server = start_server(args.source, args.port, out / "runs" / "server.log")
    url = f"http://127.0.0.1:{args.port}"
    rows: list[dict[str, Any]] = []
    try:
        for seed in (int(s) for s in args.seeds.split(",")):
            cell = Cell(args.task, METHOD, args.shots, seed)
            for route, source in (("in-process", args.source), ("http", url)):
                start = time.perf_counter()
                metrics = run_cell(
                    cell, out / "runs" / route / f"seed{seed}", source=source, epochs=args.epochs
                )
                rows.append(row(route, cell, metrics, time.perf_counter() - start))
                print(json.dumps(rows[-1]), flush=True)
        served = httpx.get(f"{url}/health", timeout=10).json()["queries_served"]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    sent = sum(r["queries"] for r in rows if r["route"] == "http")
    command = "OMP_NUM_THREADS=1 python benchmarks/language_http.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    mach = machine()
    record = {
        "command": command,
        "method": METHOD,
        "source": args.source,
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        "server_queries_served": served,
        "client_queries_sent": sent,
        "machine": mach,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": rows,
    }
    (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    with (out / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "seconds.png")
    lines = [
        f"# {args.source} trained through queries: in-process against HTTP",
        "",
        f"Command: `{command}`  ",
        f"Method: `{METHOD}` on `{args.task}`, {args.shots} shots per class, "
        f"{args.epochs} epochs; seeds {args.seeds}.  ",
        f"Machine: {describe(mach)}; {record['date']}. The server ran as its own process "
        "(`reprogram serve`) on the same machine, over loopback.",
        "",
        "| seed | route | test ROC-AUC | test accuracy | best epoch | queries | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['route']} | {r['test_roc_auc']:.4f} | {r['test_accuracy']:.4f} "
            f"| {r['best_epoch']} | {r['queries']} | {r['train_seconds']:.1f} |"
        )
    lines += [
        "",
        f"The server counted {served} queries served; the HTTP runs counted {sent} sent.",
        "",
        "![training seconds](seconds.png)",
        "",
    ]
    (out / "results.md").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
