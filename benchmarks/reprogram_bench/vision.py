"""``reprogram bench vision``: reprogramming against every baseline on one image task.

EfficientNet-Lite0 → Fashion-MNIST by default, at several shot counts and seeds. Every cell
(method × shots × seed) is an ordinary ``fit`` or ``baseline`` run with its own artifact
under ``OUT/runs/``; a finished cell is never run again, an interrupted one resumes from its
checkpoint, so a killed suite reruns only what is missing. After every cell the suite
rewrites ``results.json``, ``results.csv``, ``results.md`` and the plots from all finished
cells.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reprogram.artifact import METRICS
from reprogram.errors import ReprogramError
from reprogram_bench import cell_seconds, md_cell, palette, write_csv
from reprogram_bench.ledger import open_ledger
from reprogram_bench.machine import describe, machine
from reprogram_bench.pool import Failures, Task, check_jobs, plan, run_tasks

# Reprogramming variants worth reporting (from the program × mapping grid) and baselines.
DEFAULT_METHODS = (
    "full+linear:init=probe,lr=0.001@features:",
    "full+linear:init=probe,lr=0.001",
    "full+linear",
    "resize-pad+linear",
    "full+ilm",
    "full+blm",
    "full+blm+",
    "full+linear:init=semantic",
    "smm+linear:init=probe,lr=0.001",
    "linear-probe",
    "finetune",
    "lora",
    "bitfit",
    "scratch",
    "pixels-logreg",
)
#: The reprogramming row named in advance (the vision-full recipe, what `reprogram demo` runs)
#: and the peers it is paired against seed by seed.
RECIPE_ROW = "full+linear:init=probe,lr=0.001"
PAIRED_PEERS = ("linear-probe", "lora", "finetune")


@dataclass(frozen=True)
class Cell:
    """One run of the suite."""

    method: str
    shots: int
    seed: int

    @property
    def key(self) -> str:
        return f"{self.method}/shots{self.shots}/seed{self.seed}"

    @property
    def is_reprogramming(self) -> bool:
        return "+" in self.method


def _method_options(method: str) -> tuple[str, list[tuple[str, str]], dict[str, str]]:
    """``HEAD[:key=value,...]`` → head, its ``(key, value)`` options, and the run options.

    ``select`` (``holdout``, ``refit`` or ``kfold:K``, checked here), ``epochs`` (a whole
    number ≥ 0 that overrides the suite's ``--epochs`` for this method; 0 trains no program
    and keeps a fitted head's start) and ``optimizer`` (a registered name: ``rgf`` and
    ``spsa-gc`` train through queries) are run options; dashes in keys become underscores.
    """
    from reprogram.optim import OPTIMIZERS
    from reprogram.selection import parse_select

    head, _, opts = method.partition(":")
    items: list[tuple[str, str]] = []
    run: dict[str, str] = {}
    for item in (o for o in opts.split(",") if o):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ReprogramError(f"method {method!r}: options are key=value, got {item!r}.")
        key = key.replace("-", "_")
        if key == "select":
            parse_select(value)
            run[key] = value
        elif key == "epochs":
            if not value.isdigit():
                raise ReprogramError(
                    f"method {method!r}: epochs must be a whole number (0 or more), got {value!r}."
                )
            run[key] = int(value)
        elif key == "optimizer":
            OPTIMIZERS.get(value)  # an unknown name fails now, with the known ones
            run[key] = value
        else:
            items.append((key, value))
    return head, items, run


def parse_method(method: str) -> tuple[str, str, dict[str, dict[str, Any]]]:
    """``PROGRAM+MAPPING[:key=value,...]`` → program, mapping and options by destination.

    Each option goes to whichever of the program, the mapping or the optimizer (``gradient``
    unless ``optimizer=NAME`` names another) has a field of that name (in that order), e.g.
    ``full+linear:init=probe,lr=0.0003``; ``select`` (``holdout`` or ``kfold:K``), ``epochs``
    and ``optimizer`` go to the run itself (key ``"run"``).
    """
    from dataclasses import fields

    from reprogram.mappings import MAPPINGS
    from reprogram.optim import OPTIMIZERS
    from reprogram.programs import PROGRAMS

    head, items, run = _method_options(method)
    program, _, mapping = head.partition("+")
    kinds = {
        "program": PROGRAMS.get(program),
        "mapping": MAPPINGS.get(mapping),
        "optimizer": OPTIMIZERS.get(run.get("optimizer", "gradient")),
    }
    routed: dict[str, dict[str, Any]] = {k: {} for k in kinds}
    routed["run"] = run
    for key, value in items:
        for kind, entry in kinds.items():
            if entry.config is not None and key in {f.name for f in fields(entry.config)}:
                routed[kind][key] = value
                break
        else:
            raise ReprogramError(
                f"method {method!r}: option {key!r} belongs to none of program {program!r}, "
                f"mapping {mapping!r} or the {run.get('optimizer', 'gradient')} optimizer."
            )
    return program, mapping, routed


def parse_baseline(method: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """``NAME[:key=value,...]`` → baseline name, its method options, run options (``select``)."""
    from reprogram.baselines import BASELINES

    name, items, run = _method_options(method)
    if "optimizer" in run:
        raise ReprogramError(
            f"method {method!r}: optimizer= applies to PROGRAM+MAPPING methods; a peer "
            "trains its own way."
        )
    options = dict(items)
    BASELINES.build_config(name, options)  # unknown names and options fail now
    return name, options, run


def split_source(method: str, default: str) -> tuple[str, str]:
    """``PROGRAM+MAPPING[:options][@SOURCE]`` → (method without ``@SOURCE``, source name).

    ``@SOURCE`` runs that cell on another source than the suite's (e.g.
    ``full+linear:init=probe@features:efficientnet-lite0``, visual prompting + linear probe).
    A prefix alone (``@features:``) applies to the suite's source.
    """
    if "@" not in method:
        return method, default
    body, source = method.rsplit("@", 1)
    if source.endswith(":") and default:
        source += default
    if not body or not source:
        raise ReprogramError(f"method {method!r}: write PROGRAM+MAPPING[:OPTIONS]@SOURCE.")
    if "+" not in body:
        raise ReprogramError(f"method {method!r}: baselines take no @SOURCE here.")
    return body, source


def _check_method(method: str, suite_source: str) -> None:
    from reprogram.sources import SOURCES

    body, source = split_source(method, suite_source)
    if source != suite_source:
        SOURCES.resolve(source)
    if "+" in body:
        parse_method(body)
    else:
        parse_baseline(body)


def run_cell(
    cell: Cell, out: Path, *, source: str, target: str, epochs: int, canvas_size: int
) -> dict[str, Any]:
    """Run (or resume) one cell into ``out``; returns its metrics."""
    from reprogram.selection import unfinished

    resume = unfinished(out)
    method, source = split_source(cell.method, source)
    common: dict[str, Any] = dict(
        source=source,
        target=target,
        shots=cell.shots,
        epochs=epochs,
        seed=cell.seed,
        out=str(out),
        resume=resume,
        overwrite=not resume,
        progress=False,
    )
    return run_method(method, common, {"canvas_size": canvas_size}, {"canvas_size": canvas_size})


def run_method(
    method: str,
    common: dict[str, Any],
    program_options: dict[str, Any] | None = None,
    baseline_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One bench cell: ``fit`` for ``PROGRAM+MAPPING[:options]`` or ``run_baseline`` for a
    baseline name, with the run settings ``common`` (source, target, shots, seed, out …);
    ``program_options`` start the program's options (the method's own win) and
    ``baseline_options`` are extra baseline settings. Returns the run's metrics."""
    if "+" in method:
        from reprogram import FitConfig, fit

        program, mapping, options = parse_method(method)
        config = FitConfig(
            program=program,
            mapping=mapping,
            program_options={**(program_options or {}), **options["program"]},
            mapping_options=options["mapping"],
            optimizer_options=options["optimizer"],
            plots=False,
            **{**common, **options["run"]},
        )
        return fit(config).metrics
    from reprogram.baselines import BaselineConfig, run_baseline

    name, method_options, run = parse_baseline(method)
    bconfig = BaselineConfig(
        method=name,
        method_options=method_options,
        **(baseline_options or {}),
        **{**common, **run},
    )
    return run_baseline(bconfig).metrics


def _artifact_bytes(directory: Path) -> int:
    return sum(
        (directory / name).stat().st_size
        for name in ("config.json", "program.safetensors")
        if (directory / name).exists()
    )


def _row(cell: Cell, directory: Path) -> dict[str, Any]:
    m = json.loads((directory / METRICS).read_text())
    return {
        "method": cell.method,
        "kind": "reprogramming" if cell.is_reprogramming else "baseline",
        "shots": cell.shots,
        "seed": cell.seed,
        "val_accuracy": m["val_accuracy"],
        "test_accuracy": m["test_accuracy"],
        "trainable_parameters": m["trainable_parameters"],
        "source_parameters": m["source_parameters"],
        "artifact_bytes": _artifact_bytes(directory),
        "train_seconds": cell_seconds(directory, m),
        "best_epoch": m.get("best_epoch"),
        "epochs": m.get("epochs"),
    }


def _estimate(cell: Cell, times: dict[tuple[str, int], list[float]]) -> float | None:
    """Seconds a cell should take, from finished cells of the same method (scaled by shots)."""
    same = times.get((cell.method, cell.shots))
    if same:
        return statistics.mean(same)
    other = [(k[1], statistics.mean(v)) for k, v in times.items() if k[0] == cell.method and v]
    if other:
        shots, seconds = max(other)
        return seconds * cell.shots / shots
    return None


def run_vision(
    out: str | Path,
    *,
    shots: tuple[int, ...] = (10, 100, 1000),
    seeds: tuple[int, ...] = (0, 1, 2),
    methods: tuple[str, ...] = DEFAULT_METHODS,
    source: str = "efficientnet-lite0",
    target: str = "fashion-mnist",
    epochs: int = 10,
    canvas_size: int = 128,
    command: str | None = None,
    progress: bool = True,
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """Run every missing cell, then write the tables and plots; returns all result rows.

    Args:
        out: suite directory (``runs/`` holds one artifact per cell).
        shots, seeds, methods: the grid; a method is ``PROGRAM+MAPPING`` or a baseline name.
        source, target, epochs, canvas_size: shared by every cell.
        command: the command line recorded in the results.
        jobs: cells run at once, each in a worker process (:mod:`reprogram_bench.pool`).
    """
    check_jobs(jobs)
    for method in methods:
        _check_method(method, source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = [Cell(m, k, s) for k in sorted(shots) for s in seeds for m in methods]
    settings = {
        "source": source,
        "target": target,
        "epochs": epochs,
        "canvas_size": canvas_size,
        "shots": sorted(shots),
        "seeds": list(seeds),
        "methods": list(methods),
    }
    ledger = open_ledger(out, settings, command or "reprogram bench vision", _key_of,
                         shared=SHARED_SETTINGS)
    settings = {**ledger.settings, "shots": sorted(ledger.settings["shots"]),
                "seeds": sorted(ledger.settings["seeds"])}

    def finished(c: Cell) -> bool:
        metrics = out / "runs" / c.key / METRICS
        return metrics.exists() or ledger.finished_earlier(c.key, metrics) is not None

    times: dict[tuple[str, int], list[float]] = defaultdict(list)
    rows: list[dict[str, Any]] = []
    by_index: dict[int, dict[str, Any]] = {}
    started = time.perf_counter()

    def report(i: int, row: dict[str, Any], write: bool = True) -> None:
        by_index[i] = row  # the rows in grid order, whatever order cells finish in
        rows[:] = [by_index[k] for k in sorted(by_index)]
        if progress:
            print(
                f"[{i}/{len(cells)}] {cells[i - 1].key}  test {row['test_accuracy']:.4f}  "
                f"val {row['val_accuracy']:.4f}  {row['train_seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        if write:
            write_results(out, ledger.rows(rows), settings, ledger.commands)

    pending = plan(cells, out, ledger, _row, run_cell,
                   dict(source=source, target=target, epochs=epochs,
                        canvas_size=canvas_size), report)

    def before(task: Task) -> None:  # one cell at a time: say what runs and what is left
        if not progress:
            return
        left = [c for c in cells[task.index - 1 :] if not finished(c)]
        known = [g for g in (_estimate(c, times) for c in left) if g is not None]
        eta = (
            f"~{sum(known) / 60:.0f} min left for {len(known)} of {len(left)} cells"
            if known
            else "no estimate yet"
        )
        print(
            f"{task.label}  running  ({(time.perf_counter() - started) / 60:.1f} min so far; "
            f"{eta})",
            file=sys.stderr,
            flush=True,
        )

    failures = Failures(out, progress)
    for done in run_tasks(pending, jobs, before=before, progress=progress):
        cell = cells[done.index - 1]
        if done.error is not None:
            failures.add(f"[{done.index}/{len(cells)}] {cell.key}", cell.key, done.error)
            continue
        times[(cell.method, cell.shots)].append(done.seconds)
        report(done.index, _row(cell, out / "runs" / cell.key))
    failures.raise_any()
    return rows


def _key_of(row: dict[str, Any]) -> str:
    """A recorded row's cell key."""
    return Cell(row["method"], int(row["shots"]), int(row["seed"])).key


#: Settings every cell of one suite directory must share.
SHARED_SETTINGS = ("source", "target", "epochs", "canvas_size")


def summarise(rows: list[dict[str, Any]], by: str = "shots") -> list[dict[str, Any]]:
    """Mean ± std over seeds per (method, ``by``): shots here, the data set in ``bench ucr``."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["method"], r[by])].append(r)
    out = []
    for (method, value), rs in groups.items():
        tests = [r["test_accuracy"] for r in rs]
        vals = [r["val_accuracy"] for r in rs if r["val_accuracy"] is not None]
        out.append(
            {
                "method": method,
                "kind": rs[0]["kind"],
                by: value,
                "seeds": sorted(r["seed"] for r in rs),
                "test_mean": statistics.mean(tests),
                "test_std": statistics.stdev(tests) if len(tests) > 1 else 0.0,
                "val_mean": statistics.mean(vals) if vals else None,  # None: nothing held out
                "trainable_parameters": rs[0]["trainable_parameters"],
                "source_parameters": rs[0]["source_parameters"],
                "artifact_bytes": int(statistics.median(r["artifact_bytes"] for r in rs)),
                "train_seconds": statistics.median(r["train_seconds"] for r in rs),
            }
        )
    return out


def verdict(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    """``wins by D`` / ``loses by D``, or ``ties`` when the mean test accuracies of two summary
    rows differ by no more than the larger of their standard deviations over seeds."""
    diff = ours["test_mean"] - theirs["test_mean"]
    noise = max(ours.get("test_std") or 0.0, theirs.get("test_std") or 0.0)
    if abs(diff) <= noise:
        return f"ties (difference {diff:+.3f}, within one std over seeds)"
    return f"{'wins' if diff > 0 else 'loses'} by {abs(diff):.3f}"


def _markdown(
    summary: list[dict[str, Any]],
    settings: dict[str, Any],
    meta: dict[str, Any],
    paired: list[dict[str, Any]] | None = None,
) -> str:
    shots = sorted({s["shots"] for s in summary})
    methods = [m for m in settings["methods"] if any(s["method"] == m for s in summary)]
    by = {(s["method"], s["shots"]): s for s in summary}
    lines = [
        f"# {settings['source']} → {settings['target']}: reprogramming vs baselines",
        "",
        *(
            [f"Command: `{meta['command']}`  "]
            if len(meta.get("commands", [])) <= 1
            else [
                "Commands (each ran the cells it names; a rerun skips finished cells):",
                "",
                *(f"- `{c}`" for c in meta["commands"]),
                "",
            ]
        ),
        f"Seeds {settings['seeds']}; {settings['epochs']} epochs for gradient methods; "
        f"{settings['canvas_size']}-px canvas for methods that use the source; validation "
        f"(20% of the shots) selects, the full test set is scored once per run.  ",
        f"Machine: {describe(meta['machine'])}; {meta['date']}.",
        "",
        "Test accuracy, mean ± std over seeds (n = seeds finished):",
        "",
        "| method | " + " | ".join(f"{k} shots" for k in shots) + " | trained params | "
        "artifact bytes | train s (median, largest shots; selection runs included) |",
        "|---|" + "---|" * len(shots) + "---|---|---|",
    ]
    for m in methods:
        cells = []
        for k in shots:
            s = by.get((m, k))
            spread = "" if s is None or len(s["seeds"]) == 1 else f" ± {s['test_std']:.3f}"
            cells.append(f"{s['test_mean']:.3f}{spread} (n={len(s['seeds'])})" if s else "–")
        last = next(by[(m, k)] for k in reversed(shots) if (m, k) in by)
        params = last["trainable_parameters"]
        frozen = last["source_parameters"]
        share = f" ({100 * params / frozen:.2f}%)" if frozen else ""
        lines.append(
            f"| {md_cell(m)} | " + " | ".join(cells) + f" | {params:,}{share} | "
            f"{last['artifact_bytes']:,} | {last['train_seconds']:.0f} ({last['shots']}) |"
        )
    best_lines = []
    for k in shots:
        rep = [s for s in summary if s["shots"] == k and s["kind"] == "reprogramming"]
        base = [s for s in summary if s["shots"] == k and s["kind"] == "baseline"]
        if rep and base:
            r = max(rep, key=lambda s: s["test_mean"])
            b = max(base, key=lambda s: s["test_mean"])
            best_lines.append(
                f"- {k} shots: best reprogramming {r['method']} {r['test_mean']:.3f} vs best "
                f"baseline {b['method']} {b['test_mean']:.3f}: reprogramming {verdict(r, b)}."
            )
    if best_lines:
        lines += ["", *best_lines]
    if paired:
        lines += [
            "",
            f"Paired by seed: `{RECIPE_ROW}` (the `vision-full` recipe, named in advance) "
            "minus each peer's test accuracy (positive: reprogramming better):",
            "",
            "| shots | peer | pairs | mean difference | better | worse |",
            "|---|---|---|---|---|---|",
            *(
                f"| {p['shots']} | {p['peer']} | {p['pairs']} | {p['mean']:+.3f} | "
                f"{p['better']} | {p['worse']} |"
                for p in paired
            ),
        ]
    return "\n".join(lines) + "\n"


def paired_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per shots and peer in :data:`PAIRED_PEERS`: :data:`RECIPE_ROW`'s test accuracy minus
    the peer's over the seeds both finished (mean, and how many seeds each way)."""
    acc = {(r["method"], r["shots"], r["seed"]): r["test_accuracy"] for r in rows}
    out = []
    for shots in sorted({r["shots"] for r in rows}):
        for peer in PAIRED_PEERS:
            seeds = sorted(
                seed
                for (m, k, seed) in acc
                if m == RECIPE_ROW and k == shots and (peer, shots, seed) in acc
            )
            if not seeds:
                continue
            diffs = [acc[(RECIPE_ROW, shots, s)] - acc[(peer, shots, s)] for s in seeds]
            out.append(
                {
                    "shots": shots,
                    "peer": peer,
                    "pairs": len(diffs),
                    "mean": statistics.mean(diffs),
                    "better": sum(d > 0 for d in diffs),
                    "worse": sum(d < 0 for d in diffs),
                }
            )
    return out


def write_results(
    out: Path,
    rows: list[dict[str, Any]],
    settings: dict[str, Any],
    commands: list[str] | str | None,
) -> None:
    """results.json / .csv / .md and the two plots, from the finished rows.

    ``commands``: every command that ran cells of this directory (the last is this one).
    """
    from reprogram.artifact import write_json

    if not isinstance(commands, list):
        commands = [commands or "reprogram bench vision"]
    meta = {
        "command": commands[-1],
        "commands": commands,
        "settings": settings,
        "machine": machine(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    summary = summarise(rows)
    paired = paired_rows(rows)
    write_json(
        out / "results.json", {"meta": meta, "rows": rows, "summary": summary, "paired": paired}
    )
    write_csv(out / "results.csv", rows)
    (out / "results.md").write_text(_markdown(summary, settings, meta, paired))
    plot_results(out, summary, settings, rows)


PROBE = "linear-probe"  #: the reference of the difference panel
FLOOR = -0.12  #: the difference panel's lowest value shown (lower ones: an arrow and the value)


def differences_to_probe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (method, shots): test accuracy minus the linear probe's on the same seed, over the
    seeds both finished (``mean``, ``std``, ``pairs``); the probe itself is left out."""
    acc = {(r["method"], r["shots"], r["seed"]): r["test_accuracy"] for r in rows}
    diffs: dict[tuple[str, int], list[float]] = defaultdict(list)
    for (m, k, seed), value in acc.items():
        if m != PROBE and (PROBE, k, seed) in acc:
            diffs[(m, k)].append(value - acc[(PROBE, k, seed)])
    return [
        {
            "method": m,
            "shots": k,
            "pairs": len(d),
            "mean": statistics.mean(d),
            "std": statistics.stdev(d) if len(d) > 1 else 0.0,
        }
        for (m, k), d in diffs.items()
    ]


def plot_results(
    out: Path,
    summary: list[dict[str, Any]],
    settings: dict[str, Any],
    rows: list[dict[str, Any]] | None = None,
) -> None:
    """``accuracy_vs_shots.png`` (test accuracy against shots; beside it, when the linear
    probe ran, each method's paired difference to it, where gaps of a point are visible) and
    ``accuracy_vs_params.png``. Solid lines: reprogramming; dashed: peers."""
    from reprogram.figures import subplots
    from reprogram_bench import legend_below

    methods = [m for m in settings["methods"] if any(s["method"] == m for s in summary)]
    colour = palette(methods)
    kind = {s["method"]: s["kind"] for s in summary}
    diffs = differences_to_probe(rows or [])
    panels = 2 if diffs else 1
    fig, axes = subplots(1, panels, figsize=(6.5 * panels, 5.0), squeeze=False)
    ax = axes[0][0]
    for m in methods:
        pts = sorted((s for s in summary if s["method"] == m), key=lambda s: s["shots"])
        ax.errorbar(
            [s["shots"] for s in pts],
            [s["test_mean"] for s in pts],
            yerr=[s["test_std"] for s in pts],
            marker="o",
            linestyle="-" if kind[m] == "reprogramming" else "--",
            color=colour[m],
            capsize=3,
            label=m,
        )
    ax.set_xscale("log")
    ax.set_xlabel("training shots per class (20% of them validate)")
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    if diffs:
        right = axes[0][1]
        right.axhline(0.0, color="black", linewidth=1.0)
        shots = sorted({d["shots"] for d in diffs})
        width = 0.8 / max(1, len(methods))
        # the range where one point matters; a method far below it is drawn at the floor
        floor = max(min(d["mean"] - d["std"] for d in diffs), FLOOR)
        top = max(d["mean"] + d["std"] for d in diffs)
        for j, m in enumerate(methods):
            pts = sorted((d for d in diffs if d["method"] == m), key=lambda d: d["shots"])
            if not pts:
                continue
            placed = [(shots.index(d["shots"]) - 0.4 + width * (j + 0.5), d) for d in pts]
            shown = [(x, d) for x, d in placed if d["mean"] >= floor]
            right.errorbar(
                [x for x, _ in shown],
                [d["mean"] for _, d in shown],
                yerr=[d["std"] for _, d in shown],
                marker="o" if kind[m] == "reprogramming" else "s",
                markersize=4,
                linestyle="none",
                color=colour[m],
                capsize=2,
                label=m,
            )
            for x, d in placed:
                if d["mean"] < floor:  # off the scale: an arrow at the floor, with its value
                    right.plot(x, floor, marker="v", color=colour[m], markersize=5)
                    right.annotate(f"{d['mean']:+.2f}", (x, floor), textcoords="offset points",
                                   xytext=(0, 4), ha="center", fontsize=6, color=colour[m],
                                   rotation=90)
        span = top - floor
        right.set_ylim(floor - 0.05 * span, top + 0.05 * span)
        right.set_xticks(range(len(shots)), [f"{k} shots" for k in shots])
        right.set_ylabel(f"minus the {PROBE} (same seed)")
        right.set_title(f"above 0: better than the {PROBE} (circles: reprogramming)",
                        fontsize=9)
        right.grid(alpha=0.3, axis="y")
    bottom = legend_below(fig, axes[0], ncol=4 if panels == 2 else 2)
    fig.suptitle(f"{settings['source']} → {settings['target']}: solid = reprogramming, "
                 "dashed = peers", fontsize=10)
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    fig.savefig(out / "accuracy_vs_shots.png", dpi=120, bbox_inches="tight")

    fig, ax = subplots(figsize=(7.5, 5.6))
    markers = "osD^v"
    for j, k in enumerate(sorted({s["shots"] for s in summary})):
        for m in methods:
            s = next((s for s in summary if s["method"] == m and s["shots"] == k), None)
            if s is None:
                continue
            ax.scatter(
                s["trainable_parameters"],
                s["test_mean"],
                marker=markers[j % len(markers)],
                color=colour[m],
                label=m if j == 0 else None,
            )
        ax.scatter([], [], marker=markers[j % len(markers)], color="black", label=f"{k} shots")
    ax.set_xscale("log")
    ax.set_xlabel("trained parameters")
    ax.set_ylabel("test accuracy (mean over seeds)")
    ax.set_title("accuracy vs trained parameters")
    ax.grid(alpha=0.3)
    bottom = legend_below(fig, [ax], ncol=2)
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    fig.savefig(out / "accuracy_vs_params.png", dpi=120, bbox_inches="tight")
