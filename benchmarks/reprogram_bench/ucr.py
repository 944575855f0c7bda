"""``reprogram bench ucr-v2s``: Voice2Series' UCR sets, reprogramming against time-series peers.

The 20 sets of Voice2Series' Table 2 that load offline, several seeds, and in the same run:
reprogramming (``PROGRAM+MAPPING[:k=v,...][@SOURCE]``, by default Whisper tiny.en with the
``waveform`` program and V2S's random many-to-one mapping), MiniRocket and a from-scratch FCN
(``BASELINE[:k=v,...]``), all under the library's protocol (validation carved from the official
training split selects; the official test split is scored once per run). Published numbers
(V2Sa and the SOTA column of V2S Table 2; bake-off means) are printed beside ours, with their
sources; note that V2S selected its epochs on the test set.

Every cell (method × set × seed) is an ordinary ``fit`` or ``baseline`` artifact under
``OUT/runs/``: a finished cell is never run again and an interrupted gradient cell resumes
from its checkpoint. After each cell the suite rewrites ``results.json``, ``results.csv``,
``results.md`` and ``accuracy_per_set.png`` from every finished cell.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reprogram.artifact import METRICS, read_json, write_json
from reprogram.errors import ReprogramError
from reprogram_bench import cell_seconds, ints, selection_text, split_methods, write_csv
from reprogram_bench.compare import markdown as markdown_paired
from reprogram_bench.compare import paired, plot_paired
from reprogram_bench.ledger import check_shared
from reprogram_bench.machine import describe, machine
from reprogram_bench.pool import Failures
from reprogram_bench.published import (
    BAKEOFF_CITATION,
    BAKEOFF_MEANS,
    PUBLISHED,
    V2S_CITATION,
    V2S_SETS,
    gap_markdown,
    published_mean,
)
from reprogram_bench.vision import _artifact_bytes, parse_baseline, parse_method
from reprogram_bench.vision import summarise as summarise_by

DEFAULT_METHODS = ("waveform+random@whisper-tiny.en", "minirocket", "scratch")


@dataclass(frozen=True)
class Method:
    """A parsed method: a reprogramming recipe or a baseline, with options by destination."""

    text: str
    kind: str  # "reprogramming" | "baseline"
    name: str  # PROGRAM+MAPPING or the baseline name
    source: str | None
    options: dict[str, dict[str, Any]]

    @property
    def gradient(self) -> bool:
        """Whether its cost grows with epochs (everything but MiniRocket-like fixed features)."""
        return self.kind == "reprogramming" or self.name in ("scratch", "finetune")

    def epochs(self, suite: int) -> int:
        """Its epochs: its own ``epochs=`` option, else the suite's ``--epochs``."""
        return int(self.options.get("run", {}).get("epochs", suite))


def parse(method: str, default_source: str) -> Method:
    """``PROGRAM+MAPPING[:k=v,...][@SOURCE]`` or ``BASELINE[:k=v,...]`` → :class:`Method`."""

    body, source = method, default_source
    if "@" in method:
        body, source = method.rsplit("@", 1)
        if not source or not body:
            raise ReprogramError(f"method {method!r}: write PROGRAM+MAPPING@SOURCE.")
    if "+" in body:
        program, mapping, routed = parse_method(body)
        return Method(method, "reprogramming", f"{program}+{mapping}", source, routed)
    if "@" in method:
        raise ReprogramError(f"method {method!r}: baselines take no @SOURCE here.")
    name, options, run = parse_baseline(body)
    return Method(method, "baseline", name, None, {"method": options, "run": run})


@dataclass(frozen=True)
class Cell:
    """One run of the suite: a method on one set with one seed."""

    method: Method
    dataset: str
    seed: int
    #: the ``ucr:PATH`` target of a set from your own files (``None``: ``ucr:<dataset>``)
    target: str | None = None

    @property
    def key(self) -> str:
        safe = self.method.text.replace("/", "_").replace(os.sep, "_")
        return f"{safe}/{self.dataset}/seed{self.seed}"


def _targets(sets: Sequence[str]) -> dict[str, str | None]:
    """Set name → its ``ucr:PATH`` target for your own files, ``None`` for archive sets.

    An archive name is spelled as the archive does; a path (see
    :func:`reprogram.data.ucr_files.looks_like_path`) is named by its ``<Name>_TRAIN`` file.
    """
    from reprogram.data.ucr import resolve_name
    from reprogram.data.ucr_files import find_pair, looks_like_path

    targets: dict[str, str | None] = {}
    for text in sets:
        if looks_like_path(text):
            name, train, _ = find_pair(text)
            target: str | None = f"ucr:{train.resolve()}"
        else:
            name, target = resolve_name(text), None
        if name in targets:
            raise ReprogramError(
                f"--sets names {name!r} twice ({text!r}); rename one set's files "
                "(<Name>_TRAIN/_TEST) so each set has its own name."
            )
        targets[name] = target
    return targets


def shots_for(train_counts: list[int], max_train: int | None) -> int | None:
    """``--shots`` that keeps at most ``max_train`` training series (``None``: all of them).

    ``max_train // K`` per class, capped by the smallest class (so every class can give one
    series to validation and keep one), for quick runs only: classes become balanced.
    """
    if max_train is None or sum(train_counts) <= max_train:
        return None
    return max(2, min(max_train // len(train_counts), min(train_counts)))


def run_cell(
    cell: Cell,
    out: Path,
    *,
    epochs: int,
    shots: int | None,
    select: str = "holdout",
    callbacks: list[Any] | None = None,
    accelerator: str = "auto",
) -> None:
    """Run (or resume) one cell into ``out``; ``callbacks`` go to a reprogramming cell's
    ``fit`` (diagnostics that watch training); ``accelerator`` as ``--accelerator``."""
    from reprogram.selection import unfinished

    resume = unfinished(out)
    common: dict[str, Any] = dict(
        target=cell.target or f"ucr:{cell.dataset}",
        shots=shots,
        select=select,
        epochs=epochs,
        accelerator=accelerator,
        seed=cell.seed,
        out=str(out),
        resume=resume,
        overwrite=not resume,
        progress=False,
        plots=False,
    )
    m = cell.method
    common.update(m.options.get("run", {}))  # a method's own select= wins over the suite's
    if m.kind == "reprogramming":
        from reprogram import FitConfig, fit

        program, mapping = m.name.split("+")
        names = {f.name for f in dataclasses.fields(FitConfig)}
        extra = {"diagnostics": False} if "diagnostics" in names else {}
        fit(
            FitConfig(
                source=m.source or "",
                program=program,
                mapping=mapping,
                program_options=m.options["program"],
                mapping_options=m.options["mapping"],
                optimizer_options=m.options["optimizer"],
                **common,
                **extra,
            ),
            callbacks=callbacks,
        )
        return
    from reprogram.baselines import BaselineConfig, run_baseline

    run_baseline(BaselineConfig(method=m.name, method_options=m.options["method"], **common))


def _row(cell: Cell, directory: Path, shots: int | None) -> dict[str, Any]:
    m = read_json(directory / METRICS, "the metrics")
    return {
        "method": cell.method.text,
        "kind": cell.method.kind,
        "source": cell.method.source,
        "dataset": cell.dataset,
        "seed": cell.seed,
        "shots": shots,
        "train": m["splits"]["train"],
        "val": m["splits"]["val"],
        "test": m["splits"]["test"],
        "val_accuracy": m["val_accuracy"],
        "test_accuracy": m["test_accuracy"],
        "trainable_parameters": m["trainable_parameters"],
        "source_parameters": m["source_parameters"],
        "artifact_bytes": _artifact_bytes(directory),
        "train_seconds": cell_seconds(directory, m),
        "best_epoch": m.get("best_epoch"),
        "epochs": m.get("epochs"),
        "accelerator": m.get("accelerator", "cpu"),  # runs before --accelerator were CPU-only
    }


class Clock:
    """Seconds per unit of work for each method, from finished cells: estimates what is left.

    A cell's work is its training series (times the epochs for gradient methods) times
    ``L ** beta``, ``L`` the set's series length. Programs differ in how cost grows with
    ``L``: a fixed 1-s window costs the same for every set (``beta`` 0), a window fitted to the
    series (``fit=4``), MiniRocket and the FCN grow with it (``beta`` 1). Each method's
    ``beta`` is fitted (least squares on log seconds, clipped to [0, 1]) once it has finished
    cells of two lengths; before that it is 0.5, which errs by at most √(L ratio) either way.
    """

    PRIOR_BETA = 0.5

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.done: dict[str, list[tuple[float, int, float]]] = defaultdict(list)

    def units(self, cell: Cell, n_train: int) -> float:
        epochs = max(cell.method.epochs(self.epochs), 1)  # epochs=0 still reads every series
        return float(n_train * (epochs if cell.method.gradient else 1))

    def record(self, cell: Cell, n_train: int, length: int, seconds: float) -> None:
        self.done[cell.method.text].append((self.units(cell, n_train), length, seconds))

    def beta(self, method: str) -> float:
        """How cost grows with series length for ``method``, fitted from its finished cells."""
        done = [(u, n, t) for u, n, t in self.done.get(method, []) if t > 0]
        logs = [math.log(n) for _, n, _ in done]
        if len(set(logs)) < 2:
            return self.PRIOR_BETA
        per_unit = [math.log(t / u) for u, _, t in done]
        mx, my = statistics.mean(logs), statistics.mean(per_unit)
        slope = sum((x - mx) * (y - my) for x, y in zip(logs, per_unit, strict=True)) / sum(
            (x - mx) ** 2 for x in logs
        )
        return min(1.0, max(0.0, slope))

    def estimate(self, cell: Cell, n_train: int, length: int) -> float | None:
        """Seconds ``cell`` should take, or None before its method has finished a cell."""
        done = self.done.get(cell.method.text)
        if not done:
            return None
        beta = self.beta(cell.method.text)
        rate = sum(t for _, _, t in done) / sum(u * n**beta for u, n, _ in done)
        return rate * self.units(cell, n_train) * length**beta


def run_ucr(
    out: str | Path,
    *,
    sets: tuple[str, ...] = V2S_SETS,
    seeds: tuple[int, ...] = (0, 1, 2),
    methods: tuple[str, ...] = DEFAULT_METHODS,
    source: str = "whisper-tiny.en",
    epochs: int = 100,
    max_train: int | None = None,
    select: str = "holdout",
    accelerator: str = "auto",
    command: str | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run every missing cell, then write the tables and the plot; returns all result rows.

    Args:
        out: suite directory (``runs/METHOD/SET/seedS`` holds one artifact per cell).
        sets: UCR set names; seeds: run seeds; methods: see :func:`parse`.
        source: the source of reprogramming methods that name none (``@SOURCE``).
        epochs: epochs of gradient methods (reprogramming, scratch).
        max_train: at most this many training series per set (quick runs; see
            :func:`shots_for`).
        select: ``holdout`` (20% of the training series validate), ``refit`` (they choose,
            then a refit on every training series) or ``kfold:K`` (K-fold cross-validation
            chooses, then a refit; see :mod:`reprogram.selection`).
        accelerator: where gradient methods train (``--accelerator``; the kernel peers run
            on the CPU whatever it says).
        command: the command line recorded in the results.
    """
    from reprogram.data import load_target

    parsed = [parse(m, source) for m in methods]  # bad methods fail before any work
    from reprogram.selection import parse_select

    parse_select(select)
    from reprogram.accelerator import resolve

    resolved = resolve(accelerator)
    targets = _targets(sets)
    names = list(targets)
    if max_train is not None and max_train < 2:
        raise ReprogramError(f"--max-train must be at least 2, got {max_train}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, tuple[int | None, int, int]] = {}
    for name in names:
        data = load_target(targets[name] or f"ucr:{name}")
        counts = data.train.y.bincount().tolist()
        shots = shots_for(counts, max_train)
        n_train = sum(counts) if shots is None else shots * len(counts)
        sizes[name] = (shots, n_train, int(data.train.x.shape[-1]))
    cells = [Cell(m, d, s, targets[d]) for d in names for s in seeds for m in parsed]
    settings = {
        "sets": names,
        "local_files": {d: t for d, t in targets.items() if t},
        "seeds": list(seeds),
        "methods": list(methods),
        "source": source,
        "epochs": epochs,
        "max_train": max_train,
        "select": select,
        "accelerator": resolved,
    }
    _check_earlier(out, settings)
    meta = _meta(command, settings)
    clock = Clock(epochs)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    failures = Failures(out, progress)
    for i, cell in enumerate(cells, 1):
        directory = out / "runs" / cell.key
        shots, n_train, length = sizes[cell.dataset]
        if not (directory / METRICS).exists():
            if progress:
                eta = _eta(cells[i - 1 :], out, clock, sizes, started)
                line = f"[{i}/{len(cells)}] {cell.key}  running  ({eta})"
                print(line, file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                run_cell(
                    cell,
                    directory,
                    epochs=epochs,
                    shots=shots,
                    select=select,
                    accelerator=accelerator,
                )
            except ReprogramError as exc:
                failures.add(f"[{i}/{len(cells)}] {cell.key}", cell.key, exc)
                continue
            clock.record(cell, n_train, length, time.perf_counter() - t0)
        row = _row(cell, directory, shots)
        rows.append(row)
        if progress:
            print(
                f"[{i}/{len(cells)}] {cell.key}  test {row['test_accuracy']:.4f}  "
                f"val {_val(row['val_accuracy'])}  {row['train_seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        write_results(out, rows, settings, meta)
    failures.raise_any()
    return rows


def _val(accuracy: float | None) -> str:
    """A cell's validation accuracy, or a dash for a run that held nothing out."""
    return "—" if accuracy is None else f"{accuracy:.4f}"


def _check_earlier(out: Path, settings: dict[str, Any]) -> None:
    """Refuse to mix cells trained under other settings into this suite directory."""
    path = out / "results.json"
    if not path.exists():
        return
    earlier = read_json(path, "the suite results").get("meta", {}).get("settings", {})
    check_shared(out, {"select": "holdout", **earlier}, settings, ("epochs", "max_train", "select"))


def _eta(
    left: list[Cell],
    out: Path,
    clock: Clock,
    sizes: dict[str, tuple[int | None, int, int]],
    started: float,
) -> str:
    todo = [c for c in left if not (out / "runs" / c.key / METRICS).exists()]
    guesses = [clock.estimate(c, *sizes[c.dataset][1:]) for c in todo]
    known = [g for g in guesses if g is not None]
    so_far = f"{(time.perf_counter() - started) / 60:.1f} min so far"
    if not known:
        return f"{so_far}; {len(todo)} cells left, no estimate yet"
    return f"{so_far}; ~{sum(known) / 60:.1f} min left for {len(known)} of {len(todo)} cells"


def _meta(command: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "command": command or "reprogram bench ucr-v2s",
        "settings": settings,
        "machine": {
            **machine(),
            "niceness": os.nice(0) if hasattr(os, "nice") else None,
            "load_average_at_start": [round(v, 2) for v in load] if load else None,
        },
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "published": {
            "v2s": {k: {"sota": v[0], "v2sa": v[1]} for k, v in PUBLISHED.items()},
            "v2s_citation": V2S_CITATION,
            "bakeoff_means": BAKEOFF_MEANS,
            "bakeoff_citation": BAKEOFF_CITATION,
        },
    }


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std of test accuracy over seeds per (method, set)."""
    return summarise_by(rows, by="dataset")


def means_over_sets(summary: list[dict[str, Any]], sets: list[str]) -> dict[str, dict[str, Any]]:
    """Per method: the mean over sets of its per-set mean, the sets it covers, and V2Sa's and
    SOTA's means over those same sets (for a like-for-like comparison of partial runs)."""
    out: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(s["method"] for s in summary):
        done = [s for s in summary if s["method"] == method and s["dataset"] in sets]
        covered = [s["dataset"] for s in done]
        known = [d for d in covered if d in PUBLISHED]
        out[method] = {
            "mean": statistics.mean(s["test_mean"] for s in done),
            "sets": len(covered),
            "v2sa_same_sets": statistics.mean(PUBLISHED[d][1] / 100 for d in known)
            if known
            else None,
            "sota_same_sets": statistics.mean(PUBLISHED[d][0] / 100 for d in known)
            if known
            else None,
        }
    return out


def _markdown(
    summary: list[dict[str, Any]],
    settings: dict[str, Any],
    meta: dict[str, Any],
    comparisons: list[tuple[str, str, dict[str, Any]]] | None = None,
) -> str:
    methods = [m for m in settings["methods"] if any(s["method"] == m for s in summary)]
    sets = [d for d in settings["sets"] if any(s["dataset"] == d for s in summary)]
    by = {(s["method"], s["dataset"]): s for s in summary}
    mach = meta["machine"]
    epochs = settings["epochs"]
    limit = settings["max_train"]
    data = (
        "all training series"
        if limit is None
        else f"at most {limit} training series per set (balanced shots)"
    )
    lines = [
        "# UCR (Voice2Series sets): reprogramming vs time-series peers",
        "",
        f"Command: `{meta['command']}`  ",
        f"Seeds {settings['seeds']}; {epochs} epochs for gradient methods (reprogramming, "
        f"scratch) unless a method names its own `epochs=`; {data}; "
        f"{selection_text(settings.get('select', 'holdout'))}; the "
        "official test split is scored once per run.  ",
        f"Machine: {describe(mach)}, "
        f"niceness {mach['niceness']}, load average at start {mach['load_average_at_start']} "
        f"(times are wall-clock on a CPU shared with other jobs); {meta['date']}.",
        *(
            [f"Your own sets (`ucr:PATH`): {', '.join(f'{d} ({t[4:]})' for d, t in own.items())}."]
            if (own := settings.get("local_files"))
            else []
        ),
        "",
        "Test accuracy (%), mean ± std over seeds (n = seeds finished). V2Sa and SOTA: published "
        "(V2S Table 2; epochs chosen on the test set there, so optimistic).",
        "",
        "| set | " + " | ".join(methods) + " | V2Sa | SOTA |",
        "|---|" + "---|" * (len(methods) + 2),
    ]
    for d in sets:
        cells = []
        for m in methods:
            s = by.get((m, d))
            cells.append(
                f"{100 * s['test_mean']:.2f} ± {100 * s['test_std']:.2f} (n={len(s['seeds'])})"
                if s
                else "–"
            )
        sota, v2sa = PUBLISHED.get(d, (None, None))
        pub = [f"{v:.2f}" if v is not None else "–" for v in (v2sa, sota)]
        lines.append(f"| {d} | " + " | ".join(cells + pub) + " |")
    means = means_over_sets(summary, sets)
    mean_cells = [f"**{100 * means[m]['mean']:.2f}** ({means[m]['sets']} sets)" for m in methods]
    known = [d for d in sets if d in PUBLISHED]
    pub_means = [f"{published_mean(known, c):.2f}" if known else "–" for c in ("V2Sa", "SOTA")]
    lines.append("| **mean over sets** | " + " | ".join(mean_cells + pub_means) + " |")
    lines += [
        "",
        "Published means over all 20 sets: V2Sa 87.68, SOTA column 86.18; bake-off "
        + ", ".join(f"{k} {v:.2f}" for k, v in BAKEOFF_MEANS.items())
        + ".  ",
        f"Sources: {V2S_CITATION}; {BAKEOFF_CITATION}.",
        "",
    ]
    if comparisons:
        lines += [*markdown_paired(comparisons), ""]
    if known:
        lines += [*gap_markdown(summary, methods), ""]
    lines += [
        "| method | trained params (median set) | artifact bytes (median) | train s "
        "(median cell; selection runs included) |",
        "|---|---|---|---|",
    ]
    for m in methods:
        rs = [s for s in summary if s["method"] == m]
        lines.append(
            f"| {m} | {int(statistics.median(s['trainable_parameters'] for s in rs)):,} | "
            f"{int(statistics.median(s['artifact_bytes'] for s in rs)):,} | "
            f"{statistics.median(s['train_seconds'] for s in rs):.1f} |"
        )
    return "\n".join(lines) + "\n"


def comparisons_of(
    rows: list[dict[str, Any]], settings: dict[str, Any], sets: list[str]
) -> list[tuple[str, str, dict[str, Any]]]:
    """Each reprogramming method paired against each peer of the run (see :mod:`.compare`)."""
    kinds = {r["method"]: r["kind"] for r in rows}
    ours = [m for m in settings["methods"] if kinds.get(m) == "reprogramming"]
    peers = [m for m in settings["methods"] if kinds.get(m) == "baseline"]
    found = ((a, b, paired(rows, a, b, sets)) for a in ours for b in peers)
    return [(a, b, c) for a, b, c in found if c is not None]


def write_results(
    out: Path, rows: list[dict[str, Any]], settings: dict[str, Any], meta: dict[str, Any]
) -> None:
    """results.json / .csv / .md, ``accuracy_per_set.png`` and (with a reprogramming method
    and a peer) ``paired.png`` from the finished rows."""
    summary = summarise(rows)
    sets = [d for d in settings["sets"] if any(s["dataset"] == d for s in summary)]
    comparisons = comparisons_of(rows, settings, sets)
    write_json(
        out / "results.json",
        {
            "meta": meta,
            "rows": rows,
            "summary": summary,
            "means_over_sets": means_over_sets(summary, sets),
            "paired": [{"method": a, "against": b, **c} for a, b, c in comparisons],
        },
    )
    write_csv(out / "results.csv", rows)
    (out / "results.md").write_text(_markdown(summary, settings, meta, comparisons))
    plot_results(out, summary, settings)
    plot_paired(out / "paired.png", rows, comparisons)


def plot_results(out: Path, summary: list[dict[str, Any]], settings: dict[str, Any]) -> None:
    """``accuracy_per_set.png``: each method's mean ± std per set, beside published V2Sa."""
    from reprogram.figures import subplots

    methods = [m for m in settings["methods"] if any(s["method"] == m for s in summary)]
    sets = [d for d in settings["sets"] if any(s["dataset"] == d for s in summary)]
    fig, ax = subplots(figsize=(max(6.0, 0.55 * len(sets) + 2.5) + 3.5, 4.8))
    width = 0.7 / max(len(methods), 1)
    for j, m in enumerate(methods):
        xs, ys, es = [], [], []
        for i, d in enumerate(sets):
            s = next((s for s in summary if s["method"] == m and s["dataset"] == d), None)
            if s is not None:
                xs.append(i - 0.35 + width * (j + 0.5))
                ys.append(100 * s["test_mean"])
                es.append(100 * s["test_std"])
        ax.errorbar(xs, ys, yerr=es, fmt="o", ms=4, capsize=2, label=m)
    known = [(i, PUBLISHED[d]) for i, d in enumerate(sets) if d in PUBLISHED]
    if known:
        ax.scatter([i for i, _ in known], [p[1] for _, p in known], marker="x", color="black",
                   zorder=3, label="V2Sa (published, test-selected)")  # fmt: skip
        ax.scatter([i for i, _ in known], [p[0] for _, p in known], marker="_", s=120,
                   color="grey", zorder=3, label="SOTA column of V2S (published)")  # fmt: skip
    ax.set_xticks(range(len(sets)), sets, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (%), mean ± std over seeds")
    ax.set_title("UCR, Voice2Series sets: reprogramming vs peers")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out / "accuracy_per_set.png", dpi=120)


def _names(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    return tuple(v.strip() for v in text.split(",") if v.strip())


def run_from_args(args: Any, command: str | None) -> list[dict[str, Any]]:
    """``reprogram bench ucr-v2s`` from parsed command-line arguments; prints the means."""
    rows = run_ucr(
        args.out,
        sets=_names(args.sets) or V2S_SETS,
        seeds=ints(args.seeds, "--seeds"),
        methods=(split_methods(args.methods) if args.methods else None) or DEFAULT_METHODS,
        source=args.source,
        epochs=args.epochs if args.epochs is not None else 100,
        max_train=args.max_train,
        select=args.select,
        accelerator=args.accelerator,
        command=command,
        progress=not args.quiet,
    )
    summary = summarise(rows)
    sets = list(dict.fromkeys(r["dataset"] for r in rows))
    for method, m in means_over_sets(summary, sets).items():
        print(f"{method:<40} mean test {100 * m['mean']:.2f}% over {m['sets']} sets")
    return rows
