"""``reprogram bench blackbox``: training through queries alone vs white-box gradients.

EfficientNet-Lite0 (ImageNet) is served by ``reprogram serve``'s app over loopback HTTP (a
uvicorn thread on 127.0.0.1, answering pixels ``[B, 3, S, S]`` at the suite's canvas ``S``)
and reprogrammed for ``digits`` and ``fashion-mnist`` with few shots. Per target and seed:

* ``white-box``: ``gradient`` (Adam through the in-process model), the same ``coarse``
  program and ``linear`` mapping, the same epochs: the reference;
* ``rgf`` and ``spsa-gc``: the same program and mapping trained through HTTP queries only
  (hybrid: the mapping gets exact gradients from the answered probabilities, the program
  zeroth-order estimates); every query is counted;
* ``rgf@N``: ``rgf`` under ``--query-budget N`` for smaller budgets (the run stops cleanly
  when the next epoch would not fit and scores the test from the held-back queries), giving
  test accuracy against queries;
* ``mapping-only``: no program (``resize``), only the linear mapping on the answered
  log-probabilities (one query per example and epoch; later epochs come from the cache).

Fashion-MNIST's test set is a fixed stratified subset (``FASHION_TEST`` images, seed 0) so that
the test scoring does not dominate every budget; digits uses its whole fixed test split.
Validation (20% of the shots) selects the epoch; the test is scored once per run.

It also measures queries/s through loopback HTTP against the same model in process at batch 64
(:func:`reprogram_bench.throughput.loopback_throughput`, server in a thread of this process, the
source's own 224-px input).

Every cell is an ordinary ``fit`` with its artifact under ``OUT/runs/``; a finished cell is
skipped on a rerun, an interrupted one resumes from its checkpoint. After every cell
``results.json``, ``results.csv``, ``results.md`` and ``accuracy_vs_queries.png`` are rewritten.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from reprogram.artifact import METRICS, write_json
from reprogram.checkpoint import CHECKPOINT_NAME
from reprogram.errors import ReprogramError
from reprogram_bench import write_csv
from reprogram_bench.machine import describe, machine
from reprogram_bench.pool import Failures

SOURCE = "efficientnet-lite0"
TARGETS = ("digits", "fashion-mnist")
CANVAS = 64
SHOTS = 10
EPOCHS = 6
BATCH = 16
GRID = 8
FASHION_TEST = 500
#: Options per method (zeroth-order ones trained over HTTP).
METHODS: dict[str, dict[str, Any]] = {
    "white-box": {"optimizer": "gradient", "options": {"lr": 0.01}},
    "rgf": {
        "optimizer": "rgf",
        "options": {"q": 3, "beta": 0.01, "lr": 0.001, "mapping_lr": 0.01},
    },
    "spsa-gc": {
        "optimizer": "spsa-gc",
        "options": {"samples": 2, "a": 0.0001, "c": 0.01, "lr": 0.01},
    },
    "mapping-only": {"optimizer": "rgf", "options": {"q": 1, "lr": 0.01}, "program": "resize"},
}
#: Epochs' worth of queries for the budget-limited rgf cells.
BUDGET_EPOCHS = (1, 3)


@dataclass(frozen=True)
class Cell:
    """One run: target × method × seed (``budget``: rgf under a query budget)."""

    target: str
    method: str
    seed: int
    budget_epochs: int | None = None

    @property
    def name(self) -> str:
        return f"rgf@{self.budget_epochs}ep" if self.budget_epochs else self.method

    @property
    def key(self) -> str:
        return f"{self.target}/{self.name}/seed{self.seed}"


# --------------------------------------------------------------------------- data and server
def _fashion_subset(out: Path) -> str:
    """``npz:`` target: Fashion-MNIST train, and a stratified ``FASHION_TEST``-image test subset."""
    path = out / "runs" / "_data" / f"fashion-mnist-test{FASHION_TEST}.npz"
    if not path.exists():
        from reprogram.data import load_target

        data = load_target("fashion-mnist")
        y = data.test.y.numpy()
        rng = np.random.default_rng(0)
        per = FASHION_TEST // data.num_classes
        keep = np.sort(
            np.concatenate(
                [rng.choice(np.flatnonzero(y == c), per, replace=False) for c in range(10)]
            )
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        to_u8 = lambda t: (t.numpy()[:, 0] * 255).round().astype(np.uint8)  # noqa: E731
        np.savez(
            path,
            x_train=to_u8(data.train.x),
            y_train=data.train.y.numpy(),
            x_test=to_u8(data.test.x[keep]),
            y_test=y[keep],
            class_names=np.array(data.class_names),
        )
    return f"npz:{path.resolve()}"


@contextlib.contextmanager
def served_source(canvas: int) -> Iterator[tuple[str, Any]]:
    """EfficientNet-Lite0 answering ``[B, 3, canvas, canvas]`` over loopback HTTP.

    Yields the URL and the app (its ``state.queries`` counts what it served).
    """
    import dataclasses

    from reprogram.blackbox.server import create_app, running_server, source_model
    from reprogram.sources import build_source

    model_fn, info = source_model(build_source(SOURCE))
    info = dataclasses.replace(info, input_shape=(3, canvas, canvas))
    app = create_app(model_fn, info, max_batch=256)
    with running_server(app) as url:
        yield url, app


# --------------------------------------------------------------------------- one cell
def run_cell(cell: Cell, directory: Path, target: str, url: str) -> dict[str, Any]:
    """Run (or resume) ``cell`` into ``directory``; returns its metrics."""
    from reprogram import FitConfig, fit
    from reprogram.sources import build_source

    spec = METHODS["rgf" if cell.budget_epochs else cell.method]
    program = spec.get("program", "coarse")
    resume = (directory / CHECKPOINT_NAME).exists()
    config = FitConfig(
        source=f"{SOURCE}@{CANVAS}px" + ("" if cell.method == "white-box" else " over HTTP"),
        target=target,
        program=program,
        program_options={"canvas_size": CANVAS, **({"grid": GRID} if program == "coarse" else {})},
        mapping="linear",
        optimizer=spec["optimizer"],
        optimizer_options=dict(spec["options"]),
        shots=SHOTS,
        epochs=EPOCHS,
        batch_size=BATCH,
        seed=cell.seed,
        out=str(directory),
        resume=resume,
        overwrite=not resume,
        progress=False,
        plots=False,
        query_budget=budget_for(cell, target) if cell.budget_epochs else None,
    )
    if cell.method == "white-box":
        source = build_source(SOURCE)
    else:
        source = build_source(url)
    return fit(config, source=source).metrics


def budget_for(cell: Cell, target: str) -> int:
    """Queries for ``budget_epochs`` epochs of rgf plus the test scoring."""
    from reprogram.data import load_target
    from reprogram.data.splits import prepare_splits

    splits = prepare_splits(load_target(target), shots=SHOTS, val_fraction=0.2, seed=cell.seed)
    per_example = 1 + METHODS["rgf"]["options"]["q"]
    epoch = len(splits.train) * per_example + len(splits.val)
    return int(cell.budget_epochs or 0) * epoch + len(splits.test)


def _row(cell: Cell, directory: Path) -> dict[str, Any]:
    m = json.loads((directory / METRICS).read_text())
    history = m.get("history", [])
    return {
        "target": cell.target,
        "method": cell.name,
        "seed": cell.seed,
        "val_accuracy": m["val_accuracy"],
        "test_accuracy": m["test_accuracy"],
        "queries": m.get("queries", 0),
        "train_val_queries": m.get("queries", 0) - m.get("queries_by_phase", {}).get("test", 0),
        "cache_hits": m.get("cache_hits", 0),
        "query_budget": m.get("query_budget"),
        "stopped": m.get("stopped", ""),
        "epochs": m["epochs"],
        "best_epoch": m["best_epoch"],
        "trainable_parameters": m["trainable_parameters"],
        "train_seconds": m["train_seconds"],
        "curve": [[r.get("queries_total", 0), r["val_accuracy"]] for r in history],
    }


# --------------------------------------------------------------------------- the suite
def cells_for(seeds: tuple[int, ...]) -> list[Cell]:
    out = []
    for target in TARGETS:
        for seed in seeds:
            out += [Cell(target, m, seed) for m in METHODS]
            out += [Cell(target, "rgf", seed, k) for k in BUDGET_EPOCHS]
    return out


def run_blackbox(
    out: str | Path,
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    command: str | None = None,
    progress: bool = True,
    throughput: bool = True,
    report_only: bool = False,
) -> list[dict[str, Any]]:
    """Run every missing cell and the throughput measurement; write the results.

    ``report_only``: run no training cell; the rows come from the run folders, or from
    ``results.json`` where those are gone (a clean checkout), and a missing throughput
    measurement (``runs/throughput.json``) is made."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tp_path = out / "runs" / "throughput.json"
    if report_only:
        return _report_only(out, seeds, command, tp_path, progress)
    cells = cells_for(seeds)
    targets = {"digits": "digits", "fashion-mnist": _fashion_subset(out)}
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    failures = Failures(out, progress)
    with served_source(CANVAS) as (url, app):
        for i, cell in enumerate(cells, 1):
            directory = out / "runs" / cell.key
            if not (directory / METRICS).exists():
                if progress:
                    print(
                        f"[{i}/{len(cells)}] {cell.key}  running  "
                        f"({(time.perf_counter() - started) / 60:.1f} min so far)",
                        file=sys.stderr,
                        flush=True,
                    )
                try:
                    run_cell(cell, directory, targets[cell.target], url)
                except ReprogramError as exc:
                    failures.add(f"[{i}/{len(cells)}] {cell.key}", cell.key, exc)
                    continue
            row = _row(cell, directory)
            rows.append(row)
            if progress:
                print(
                    f"[{i}/{len(cells)}] {cell.key}  test {row['test_accuracy']:.4f}  "
                    f"val {row['val_accuracy']:.4f}  queries {row['queries']}",
                    file=sys.stderr,
                    flush=True,
                )
            write_results(out, rows, seeds, command, _load(tp_path))
        served = _count_served(out, app.state.queries.value)
    if throughput and not tp_path.exists():
        _measure_throughput(tp_path, progress)
    write_results(out, rows, seeds, command, _load(tp_path), served)
    failures.raise_any()
    return rows


def _measure_throughput(tp_path: Path, progress: bool) -> None:
    """Loopback HTTP vs in process at batch 64, binary and JSON bodies, into ``tp_path``."""
    if progress:
        print("throughput: loopback HTTP vs in process, batch 64", file=sys.stderr, flush=True)
    from reprogram_bench.throughput import loopback_throughput

    tp = {
        f"thread, {wire} body": loopback_throughput(
            SOURCE, batch=64, repeats=3, server="thread", wire=wire
        )
        for wire in ("binary", "json")
    }
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for t in tp.values():
        t["date"] = when
    tp_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(tp_path, tp)


def _report_only(
    out: Path, seeds: tuple[int, ...], command: str | None, tp_path: Path, progress: bool
) -> list[dict[str, Any]]:
    """The report from finished cells (run folders, else results.json) and the throughput."""
    rows = [
        _row(c, out / "runs" / c.key)
        for c in cells_for(seeds)
        if (out / "runs" / c.key / METRICS).exists()
    ]
    previous = _load(out / "results.json") or {}
    if not rows:
        rows = list(previous.get("rows", []))
    if not rows:
        raise ReprogramError(f"--report-only: {out} holds no finished cell and no results.json.")
    if not tp_path.exists():
        _measure_throughput(tp_path, progress)
    meta = previous.get("meta") or {}
    # the cells' own command, date and machine stay on record (this one only re-rendered them)
    write_results(
        out,
        rows,
        seeds,
        meta.get("command", command),
        _load(tp_path),
        meta.get("served"),
        cells_meta=meta,
    )
    return rows


def _count_served(out: Path, session: int) -> int:
    """The server's count over every session of this suite (``runs/served.json``)."""
    path = out / "runs" / "served.json"
    previous = _load(path) or {"served": 0}
    total = int(previous["served"]) + session
    write_json(path, {"served": total})
    return total


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


# --------------------------------------------------------------------------- reporting
def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (target, method)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["target"], r["method"])].append(r)
    out = []
    for (target, method), rs in groups.items():
        tests = [r["test_accuracy"] for r in rs]
        out.append(
            {
                "target": target,
                "method": method,
                "seeds": sorted(r["seed"] for r in rs),
                "test_mean": statistics.mean(tests),
                "test_std": statistics.stdev(tests) if len(tests) > 1 else 0.0,
                "val_mean": statistics.mean(r["val_accuracy"] for r in rs),
                "queries_mean": statistics.mean(r["queries"] for r in rs),
                "train_val_queries_mean": statistics.mean(r["train_val_queries"] for r in rs),
                "epochs_mean": statistics.mean(r["epochs"] for r in rs),
                "trainable_parameters": rs[0]["trainable_parameters"],
                "train_seconds": statistics.median(r["train_seconds"] for r in rs),
            }
        )
    return out


def _markdown(
    summary: list[dict[str, Any]],
    meta: dict[str, Any],
    throughput: dict[str, Any] | None,
) -> str:
    s = meta["settings"]
    lines = [
        "# Black-box reprogramming: queries only vs white-box gradients",
        "",
        f"Command: `{meta['command']}`  ",
        f"{SOURCE} (ImageNet) served over loopback HTTP at {s['canvas']}×{s['canvas']} px; "
        f"`coarse` program ({s['grid']}×{s['grid']} per channel, 192 parameters) + `linear` "
        f"mapping; {s['shots']} shots per class (20% of them validate), {s['epochs']} epochs, "
        f"batch {s['batch']}; seeds {s['seeds']}. Fashion-MNIST test: a fixed stratified "
        f"{FASHION_TEST}-image subset; digits: its fixed 539-image test split. Validation "
        f"selects, the test is scored once per run. Queries include validation and test.  ",
        "Settings (also in results.json): white-box Adam lr 0.01; rgf q = 3, β = 0.01, Adam "
        "lr 0.001 on the program's estimate, 0.01 on the mapping's exact gradient; spsa-gc 2 "
        "perturbations a step, a = 1e-4, c = 0.01, BlackVIP's A, α, γ and momentum, mapping "
        "Adam lr 0.01; `rgf@Nep`: rgf under a --query-budget of N epochs' worth plus the test; "
        "`mapping-only`: no program, one query per example (later epochs come from the cache). "
        "These learning rates were picked in a few trial runs on digits, seed 0, by validation "
        "accuracy (lr 0.05 made the linear mapping diverge for every method).  ",
        f"Machine: {describe(meta['machine'])}; {meta['date']}. "
        "Other jobs shared the CPU (timings rough).",
        "",
        "| target | method | test acc (mean ± std) | val acc | queries (train+val / total) | "
        "epochs | vs white-box |",
        "|---|---|---|---|---|---|---|",
    ]
    white = {x["target"]: x["test_mean"] for x in summary if x["method"] == "white-box"}
    for x in sorted(summary, key=lambda x: (x["target"], -x["queries_mean"])):
        ref = white.get(x["target"])
        ratio = f"{100 * x['test_mean'] / ref:.0f}%" if ref else "–"
        queries = (
            f"{x['train_val_queries_mean']:,.0f} / {x['queries_mean']:,.0f}"
            if x["queries_mean"]
            else "– (gradients)"
        )
        lines.append(
            f"| {x['target']} | {x['method']} | {x['test_mean']:.3f} ± {x['test_std']:.3f} "
            f"(n={len(x['seeds'])}) | {x['val_mean']:.3f} | {queries} | {x['epochs_mean']:.0f} "
            f"| {ratio} |"
        )
    lines += ["", *_verdicts(summary)]
    if meta.get("served") is not None:
        lines += [
            "",
            f"The HTTP server counted {meta['served']:,} queries served over every session of "
            f"this suite; the black-box runs' own counts (metrics.json) add up to "
            f"{meta['runs_queries']:,}.",
        ]
    if throughput:
        lines += [
            "",
            "Throughput at batch 64 (EfficientNet-Lite0 at 224 px, float32 pixels on the wire, "
            "median of 3 calls after 1 warm-up, server in a thread of the same process; the "
            "request and answer bodies as safetensors bytes or as base64 JSON"
            + (f"; measured {dates}" if (dates := _tp_dates(throughput)) else "")
            + "):",
            "",
            "| server, body | HTTP queries/s | in-process queries/s | HTTP / in-process | "
            "HTTP s per call |",
            "|---|---|---|---|---|",
        ]
        for name, t in throughput.items():
            lines.append(
                f"| {name} | {t['endpoint_qps']:.1f} | {t['in_process_qps']:.1f} | "
                f"{100 * t['ratio']:.0f}% | {t['batch'] / t['endpoint_qps']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def _tp_dates(throughput: dict[str, Any]) -> str:
    """The distinct dates of the throughput rows (older results have none)."""
    return ", ".join(sorted({str(t["date"]) for t in throughput.values() if t.get("date")}))


def _verdicts(summary: list[dict[str, Any]]) -> list[str]:
    """Per target: the cheapest black-box cell reaching 90% of white-box test accuracy."""
    out = []
    for target in sorted({x["target"] for x in summary}):
        ref = next(
            (x for x in summary if x["target"] == target and x["method"] == "white-box"), None
        )
        if ref is None:
            continue
        ok = [
            x
            for x in summary
            if x["target"] == target
            and x["queries_mean"]
            and x["test_mean"] >= 0.9 * ref["test_mean"]
        ]
        if ok:
            best = min(ok, key=lambda x: x["queries_mean"])
            out.append(
                f"- {target}: `{best['method']}` reaches {best['test_mean']:.3f} = "
                f"{100 * best['test_mean'] / ref['test_mean']:.0f}% of white-box "
                f"({ref['test_mean']:.3f}) with {best['queries_mean']:,.0f} queries in all "
                f"({best['train_val_queries_mean']:,.0f} for training and validation)."
            )
        else:
            out.append(f"- {target}: no black-box cell reaches 90% of white-box.")
    return out


def write_results(
    out: Path,
    rows: list[dict[str, Any]],
    seeds: tuple[int, ...],
    command: str | None,
    throughput: dict[str, Any] | None,
    served: int | None = None,
    cells_meta: dict[str, Any] | None = None,
) -> None:
    """results.json / .csv / .md and accuracy_vs_queries.png from the finished rows
    (``cells_meta``: the machine and date of cells run earlier, kept as recorded)."""
    meta = {
        "command": command or "reprogram bench blackbox",
        "settings": {
            "source": SOURCE,
            "targets": list(TARGETS),
            "canvas": CANVAS,
            "grid": GRID,
            "shots": SHOTS,
            "epochs": EPOCHS,
            "batch": BATCH,
            "seeds": list(seeds),
            "methods": METHODS,
            "budget_epochs": list(BUDGET_EPOCHS),
            "fashion_test": FASHION_TEST,
        },
        "machine": (cells_meta or {}).get("machine") or machine(),
        "date": (cells_meta or {}).get("date")
        or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "served": served,
        "runs_queries": sum(r["queries"] for r in rows),
    }
    summary = summarise(rows)
    write_json(
        out / "results.json",
        {"meta": meta, "rows": rows, "summary": summary, "throughput": throughput},
    )
    write_csv(out / "results.csv", rows, [k for k in rows[0] if k != "curve"])
    (out / "results.md").write_text(_markdown(summary, meta, throughput))
    plot(out, rows, summary)


def plot(out: Path, rows: list[dict[str, Any]], summary: list[dict[str, Any]]) -> None:
    """``accuracy_vs_queries.png``: test accuracy against queries, one panel per target."""
    from reprogram.figures import subplots

    targets = [t for t in TARGETS if any(r["target"] == t for r in rows)]
    fig, axes = subplots(1, len(targets), figsize=(6.5 * len(targets), 4.6), squeeze=False)
    for ax, target in zip(axes[0], targets, strict=True):
        mine = [s for s in summary if s["target"] == target]
        for j, s in enumerate(sorted(mine, key=lambda s: s["method"])):
            if not s["queries_mean"]:
                ax.axhline(s["test_mean"], color="k", ls="--", label=f"{s['method']} (gradients)")
                continue
            ax.errorbar(
                s["queries_mean"],
                s["test_mean"],
                yerr=s["test_std"],
                marker="os^Dv<>"[j % 7],
                capsize=3,
                ls="none",
                label=s["method"],
            )
        ax.set_xscale("log")
        ax.set_xlabel("queries to the black box (training + validation + test)")
        ax.set_ylabel("test accuracy (mean ± std over seeds)")
        ax.set_title(f"{SOURCE} → {target}, queries only vs gradients")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_queries.png", dpi=120)


__all__ = ["Cell", "cells_for", "run_blackbox", "summarise", "write_results"]
