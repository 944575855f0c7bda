"""``reprogram bench forecast``: a frozen language model reprogrammed for forecasting (Time-LLM)
against the field's forecasters and against its own ablations (Tan et al., NeurIPS 2024).

A cell (set × horizon × training fraction × method × seed) is an ordinary ``fit`` or
``baseline`` run on ``forecast:SET#lookback=L#horizon=H…`` with its own artifact under
``OUT/runs/``; finished cells are never rerun. Validation MSE selects the epoch; the test
split (every window, stride 1) is scored once. After every cell the suite rewrites
``results.json``, ``results.csv``, ``results.md`` (MSE and MAE, mean ± std over seeds; the
published anchors beside; the reprogrammed LM paired against each ablation) and
``mse_by_horizon.png``.

A set is one of the standard four (:data:`SETS`, each with its four horizons) or a user's own
CSV file, ``PATH.csv`` (with ``--horizons``; options follow the path as for ``forecast:PATH``,
e.g. ``sales.csv#lookback=56#target_column=units``; the lookback is 512 otherwise).

Methods are ``PROGRAM+MAPPING[:options][@SOURCE]`` or a baseline name. The ablations are the
same program and mapping on a changed source: ``#depth=0`` (the LM removed: embeddings and
final norm only), ``#init=random`` (its weights drawn afresh), and ``#depth=0`` with
``attention_layers=1`` (the LM replaced by one trained attention layer). ``--source`` names
another language model for the reprogrammed row (e.g. ``smollm2-135m#depth=2#precision=bf16``
or ``minilm-l6``); its ablations follow from it (:func:`lm_methods`).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reprogram.artifact import METRICS
from reprogram.data.forecast import standard_file
from reprogram.errors import DataError, ReprogramError
from reprogram.sources.language import LanguageOptions
from reprogram_bench import cell_seconds, legend_below, md_cell, write_csv
from reprogram_bench.ledger import command_lines, open_ledger
from reprogram_bench.machine import describe, machine
from reprogram_bench.pool import Failures, check_jobs, plan, run_tasks, running_line
from reprogram_bench.vision import parse_baseline, parse_method, run_method, split_source

SETS = ("ETTh1", "ETTh2", "ILI", "exchange")
HORIZONS = {"ETTh1": (96, 192, 336, 720), "ETTh2": (96, 192, 336, 720),
            "ILI": (24, 36, 48, 60), "exchange": (96, 192, 336, 720)}
LOOKBACK = {"ILI": 104}
DEFAULT_LOOKBACK = 512
LM = "smollm2-135m#depth=2"
_PROGRAM, _OPTIONS = "patch-reprogram+horizon", ("stride=16", "lr=0.001", "decay=0.5")


def _method(*extra: str) -> str:
    """The row's ``PROGRAM+MAPPING:options`` with ``extra`` options after the stride (the
    order in which the finished cells' names, and so the ledger's keys, spell them)."""
    return f"{_PROGRAM}:{','.join((_OPTIONS[0], *extra, *_OPTIONS[1:]))}"


#: The program and mapping of the reprogrammed row and its ablations (the source follows ``@``).
PROGRAM = _method()
#: A language source's options in the order its name lists them (its options' field order).
_OPTION_ORDER = tuple(f.name for f in fields(LanguageOptions))


def _source_name(base: str, options: dict[str, str]) -> str:
    known = [k for k in _OPTION_ORDER if k in options]
    rest = [k for k in options if k not in _OPTION_ORDER]
    return "#".join([base, *(f"{k}={options[k]}" for k in known + rest)])


def lm_methods(lm: str = LM) -> tuple[str, dict[str, str]]:
    """The reprogrammed row on language source ``lm`` and its three ablations (Tan et al.),
    each the same program and mapping on a changed source: ``#depth=0`` (removed),
    ``#init=random`` and ``#depth=0`` with one trained attention layer. Other options of
    ``lm`` (``#precision``) carry over, so each pair differs in the ablated part only.

    Raises:
        ReprogramError: ``lm`` is already an ablation (``#depth=0`` or ``#init=random``).
    """
    base, _, tail = lm.partition("#")
    options = dict(part.partition("=")[::2] for part in tail.split("#") if part)
    if options.get("depth") == "0" or options.get("init", "pretrained") != "pretrained":
        raise ReprogramError(
            f"--source {lm!r} is itself an ablation (#depth=0 or #init=random); name the "
            "pre-trained language model, and the bench adds its ablations."
        )
    removed = _source_name(base, {**options, "depth": "0"})
    rand = _source_name(base, {**options, "init": "random"})
    attention = _method("attention_layers=1")
    return f"{PROGRAM}@{lm}", {
        "LM removed": f"{PROGRAM}@{removed}",
        "LM random": f"{PROGRAM}@{rand}",
        "LM → attention": f"{attention}@{removed}",
    }


#: The reprogrammed LM (named in advance) and its three ablations.
REPROGRAMMED, ABLATIONS = lm_methods()
PEERS = ("seasonal-naive", "autoets", "linear", "dlinear", "patchtst")
#: Methods with nothing random in them: one seed is enough.
DETERMINISTIC = ("seasonal-naive", "autoets")
#: Peers fitted on each window's own history (nothing learnt from the training split, nothing
#: selected on validation): their validation score, only reported, reads the reprogramming
#: cells' validation stride (AutoETS costs about 0.2 s a window).
LOCAL = ("autoets",)
#: Published MSE/MAE averaged over the four horizons (GPT4TS Table 3; lookback 336/512).
PUBLISHED = {
    "ETTh1": {"GPT4TS": (0.427, 0.426), "PatchTST": (0.413, 0.430), "DLinear": (0.423, 0.437),
              "Time-LLM (reported)": (0.408, 0.423)},
    "ILI": {"GPT4TS": (1.925, 0.903), "PatchTST": (1.443, 0.798), "DLinear": (2.169, 1.041)},
}


@dataclass(frozen=True)
class Cell:
    """One run: ``fraction`` of the training windows (1.0 all, 0.1 Time-LLM's few-shot)."""

    dataset: str
    horizon: int
    fraction: float
    method: str
    seed: int

    @property
    def key(self) -> str:
        safe = self.method.replace("/", "_").replace("#", "~")
        name = self.dataset.strip("/").replace("/", "_").replace("#", "~")  # a user's file
        return f"{name}/h{self.horizon}/f{self.fraction:g}/{safe}/seed{self.seed}"

    @property
    def is_reprogramming(self) -> bool:
        return "+" in self.method

    @property
    def kind(self) -> str:
        """Which strides and batch size the cell runs with."""
        if self.is_reprogramming:
            return "reprogramming"
        return "local" if self.method.split(":")[0] in LOCAL else "peer"


def target_name(cell: Cell, train_stride: int, val_stride: int, sample: int = 1) -> str:
    """The cell's ``forecast:`` target: its set, lookback, horizon, training share, window
    strides and ``sample`` (a fresh random 1/S of the training windows each epoch)."""
    name = f"forecast:{cell.dataset}"
    if "#lookback=" not in cell.dataset:  # a user's file may name its own
        name += f"#lookback={LOOKBACK.get(cell.dataset, DEFAULT_LOOKBACK)}"
    name += f"#horizon={cell.horizon}"
    if cell.fraction < 1.0:
        name += f"#train_fraction={cell.fraction:g}"
    if train_stride > 1:
        name += f"#stride={train_stride}"
    if val_stride > 1:
        name += f"#val_stride={val_stride}"
    if sample > 1:
        name += f"#sample={sample}"
    return name


def run_cell(cell: Cell, out: Path, *, epochs: int, strides: dict[str, tuple[int, int, int]],
             batch_sizes: dict[str, int]) -> dict[str, Any]:
    """Run (or resume) one cell into ``out``; returns its metrics."""
    from reprogram.selection import unfinished

    resume = unfinished(out)
    method, source = split_source(cell.method, "")
    kind = cell.kind
    train_stride, val_stride, sample = strides[kind]
    common: dict[str, Any] = dict(
        target=target_name(cell, train_stride, val_stride, sample),
        epochs=epochs,
        patience=3,
        batch_size=batch_sizes["reprogramming" if kind == "reprogramming" else "peer"],
        eval_batch_size=256,
        seed=cell.seed,
        out=str(out),
        resume=resume,
        overwrite=not resume,
        progress=False,
    )
    if source:  # a reprogramming cell; baselines here have no source
        common["source"] = source
    return run_method(method, common)


def _row(cell: Cell, directory: Path) -> dict[str, Any]:
    m = json.loads((directory / METRICS).read_text())
    config = json.loads((directory / "config.json").read_text())
    return {
        "dataset": cell.dataset,
        "horizon": cell.horizon,
        "fraction": cell.fraction,
        "method": cell.method,
        "kind": "reprogramming" if cell.is_reprogramming else "peer",
        "seed": cell.seed,
        "target": config["target"]["name"],
        "val_mse": m.get("val_mse"),
        "test_mse": m["test_mse"],
        "test_mae": m["test_mae"],
        "test_mse_by_step": m.get("test_mse_by_step"),
        "trainable_parameters": m["trainable_parameters"],
        "source_parameters": m["source_parameters"],
        "train_seconds": cell_seconds(directory, m),
        "best_epoch": m.get("best_epoch"),
        "splits": m.get("splits"),
    }


def check_sets(sets: tuple[str, ...], horizons: tuple[int, ...] | None) -> None:
    """Each set is a standard one whose file is here, or an existing CSV file with horizons.

    Raises:
        ReprogramError: naming the set and what to give instead.
    """
    if not sets:
        raise ReprogramError(f"--tasks names no set; give one or more of {', '.join(SETS)} "
                             "or a CSV file of your own.")
    for name in sets:
        if name in HORIZONS:  # its file must be here: a missing one is no cell to skip
            standard_file(name.lower())
            continue
        path = Path(name.split("#", 1)[0])
        if path.suffix.lower() not in (".csv", ".tsv", ".txt") or not path.is_file():
            raise ReprogramError(
                f"--tasks: {name!r} is neither a standard set ({', '.join(SETS)}) nor a CSV "
                f"file here ({path} {'is not a file' if not path.is_file() else 'is no .csv'})."
            )
        if not horizons:
            raise ReprogramError(
                f"--tasks: {name!r} is your own file, which has no standard horizons: give "
                "them with --horizons (e.g. --horizons 24,48; the lookback is 512 steps "
                f"unless the name says otherwise, e.g. {path}#lookback=96)."
            )


def cells_for(sets: tuple[str, ...], horizons: tuple[int, ...] | None,
              fractions: tuple[float, ...], methods: tuple[str, ...],
              seeds: tuple[int, ...]) -> list[Cell]:
    """The grid in running order: fractions, sets, horizons, seeds, methods; except that
    AutoETS goes first, each set's longest horizon before its shorter ones, so that they read
    back the forecasts it remembered (:mod:`reprogram.forecast.ets_store`)."""
    cells = [
        Cell(d, h, f, m, s)
        for f in fractions
        for d in sets
        for h in (horizons or HORIZONS[d])
        for s in seeds
        for m in methods
        if not (m in DETERMINISTIC and s != seeds[0])
    ]
    ets = sorted((c for c in cells if c.method == "autoets"),
                 key=lambda c: (c.fraction, c.dataset, -c.horizon))
    return ets + [c for c in cells if c.method != "autoets"]


def run_forecast(
    out: str | Path,
    *,
    sets: tuple[str, ...] = ("ETTh1",),
    horizons: tuple[int, ...] | None = None,
    fractions: tuple[float, ...] = (1.0,),
    seeds: tuple[int, ...] = (0, 1, 2),
    methods: tuple[str, ...] | None = None,
    epochs: int = 10,
    lm: str = LM,
    lm_stride: tuple[int, int] = (16, 8),
    lm_sample: int = 1,
    batch_sizes: tuple[int, int] = (32, 128),
    command: str | None = None,
    progress: bool = True,
    report_only: bool = False,
    drop_last: int | None = None,
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """Run every missing cell, then write the tables and the plot; returns all rows.

    ``lm``: the language source of the reprogrammed row, whose ablations follow from it
    (:func:`lm_methods`); ``methods``: default, that row, its ablations and every peer;
    ``lm_stride``: (training, validation) window strides of reprogramming cells (a language
    model on 2 CPU cores cannot read every window each epoch; the test split keeps all);
    ``lm_sample``: S > 1 makes reprogramming cells read a fresh random 1/S of their training
    windows each epoch (with a training stride of 1: as cheap as stride S, and over the
    epochs they see many more distinct windows);
    ``batch_sizes``: (reprogramming, peers); ``drop_last``: also re-score the finished cells
    whose artifacts are in ``out/runs`` as the published code does (the test's last
    incomplete batch of that size dropped, :mod:`reprogram_bench.drop_last`) into
    ``drop_last_B.md`` / ``.json``; ``jobs``: cells run at once, each in a worker process
    (:mod:`reprogram_bench.pool`)."""
    if lm_sample < 1:  # before the sets are looked up: a flag error is named as such
        raise ReprogramError(
            f"--lm-sample takes a whole number of at least 1 (S: a fresh 1/S of the "
            f"training windows each epoch), got {lm_sample}."
        )
    check_jobs(jobs)
    check_sets(sets, horizons)
    reprogrammed, ablations = lm_methods(lm)
    methods = methods or (reprogrammed, *ablations.values(), *PEERS)
    for method in methods:
        body, _src = split_source(method, "")
        (parse_method if "+" in body else parse_baseline)(body)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = cells_for(sets, horizons, fractions, methods, seeds)
    strides = {"reprogramming": (*lm_stride, lm_sample), "peer": (1, 1, 1),
               "local": (1, lm_stride[1], 1)}
    batches = {"reprogramming": batch_sizes[0], "peer": batch_sizes[1]}
    settings = {
        "sets": list(sets),
        "horizons": list(horizons) if horizons else None,
        "fractions": list(fractions),
        "seeds": list(seeds),
        "methods": list(methods),
        "epochs": epochs,
        "patience": 3,
        "batch_sizes": batches,
        # (training, validation[, sample]): a third number is the random 1/S read each epoch
        "lm_window_strides": [*lm_stride, *([lm_sample] if lm_sample > 1 else [])],
        "reprogrammed": reprogrammed,
        "ablations": ablations,
        "skipped": [],  # cells the data cannot form, with the reason
    }
    ledger = open_ledger(out, settings, command or "reprogram bench forecast", _key,
                         shared=("epochs", "patience", "batch_sizes", "lm_window_strides",
                                 "reprogrammed"),
                         runs_cells=not report_only)
    settings = ledger.settings  # cells skipped now are listed beside earlier ones
    rows: list[dict[str, Any]] = []
    by_index: dict[int, dict[str, Any]] = {}
    started = time.perf_counter()

    def report(i: int, row: dict[str, Any], write: bool = True) -> None:
        by_index[i] = row  # the rows in grid order, whatever order cells finish in
        rows[:] = [by_index[k] for k in sorted(by_index)]
        if progress:
            print(f"[{i}/{len(cells)}] {cells[i - 1].key}  mse {row['test_mse']:.4f}  "
                  f"mae {row['test_mae']:.4f}  {row['train_seconds']:.0f} s",
                  file=sys.stderr, flush=True)
        if write:
            write_results(out, ledger.rows(rows), settings, ledger.meta())

    pending = plan(cells, out, ledger, _row, run_cell,
                   dict(epochs=epochs, strides=strides, batch_sizes=batches),
                   report, run=not report_only)
    failures = Failures(out, progress)
    for done in run_tasks(pending, jobs, before=running_line(started, progress),
                          progress=progress):
        cell = cells[done.index - 1]
        if isinstance(done.error, DataError):  # the data cannot form this cell (too few rows)
            settings["skipped"].append({"cell": cell.key, "why": str(done.error)})
            if progress:
                print(f"[{done.index}/{len(cells)}] {cell.key}  skipped: {done.error}",
                      file=sys.stderr, flush=True)
        elif done.error is not None:
            failures.add(f"[{done.index}/{len(cells)}] {cell.key}", cell.key, done.error)
        else:
            report(done.index, _row(cell, out / "runs" / cell.key))
    if rows or ledger.recorded:  # again: cells skipped after the last finished one are listed
        write_results(out, ledger.rows(rows), settings, ledger.meta())
    if drop_last:
        write_drop_last(out, ledger.rows(rows), drop_last,
                        command or "reprogram bench forecast")
    failures.raise_any()
    return rows


def write_drop_last(out: Path, rows: list[dict[str, Any]], batch: int, command: str) -> None:
    """``drop_last_B.json`` / ``.md``: the finished cells re-scored with and without the
    test's last incomplete batch of ``batch`` (:mod:`reprogram_bench.drop_last`)."""
    from reprogram.artifact import write_json
    from reprogram_bench.drop_last import markdown, rescore

    if batch < 1:
        raise ReprogramError(f"--drop-last takes a batch size of at least 1, got {batch}.")
    scored = rescore(out, rows, batch, _key)
    write_json(out / f"drop_last_{batch}.json",
               {"command": command, "batch": batch, "machine": machine(), "rows": scored})
    (out / f"drop_last_{batch}.md").write_text(
        markdown(scored, batch, command, _label, PUBLISHED))


def _key(row: dict[str, Any]) -> str:
    """A recorded row's cell key."""
    return Cell(row["dataset"], int(row["horizon"]), float(row["fraction"]), row["method"],
                int(row["seed"])).key


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds of test MSE and MAE per (set, horizon, fraction, method)."""
    groups: dict[tuple[str, int, float, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], r["horizon"], r["fraction"], r["method"])].append(r)
    out = []
    for (dataset, horizon, fraction, method), rs in groups.items():
        mses = [r["test_mse"] for r in rs]
        maes = [r["test_mae"] for r in rs]
        out.append({
            "dataset": dataset, "horizon": horizon, "fraction": fraction, "method": method,
            "kind": rs[0]["kind"], "seeds": sorted(r["seed"] for r in rs),
            "mse_mean": statistics.mean(mses),
            "mse_std": statistics.stdev(mses) if len(mses) > 1 else 0.0,
            "mae_mean": statistics.mean(maes),
            "mae_std": statistics.stdev(maes) if len(maes) > 1 else 0.0,
            "trainable_parameters": rs[0]["trainable_parameters"],
            "source_parameters": rs[0]["source_parameters"],
            "train_seconds": statistics.median(r["train_seconds"] for r in rs),
        })
    return out


def paired(rows: list[dict[str, Any]], ours: str, theirs: str) -> dict[str, Any]:
    """``theirs`` − ``ours`` in test MSE over every (set, horizon, fraction, seed) both
    finished (positive: ours is better), with wins and losses."""
    mse = {(r["method"], r["dataset"], r["horizon"], r["fraction"], r["seed"]): r["test_mse"]
           for r in rows}
    diffs = [mse[(theirs, *k[1:])] - v for k, v in mse.items()
             if k[0] == ours and (theirs, *k[1:]) in mse]
    return {"pairs": len(diffs), "mean_diff": statistics.mean(diffs) if diffs else None,
            "wins": sum(d > 0 for d in diffs), "losses": sum(d < 0 for d in diffs)}


def _spread(mean: float, std: float, n: int) -> str:
    return f"{mean:.3f} (n=1)" if n == 1 else f"{mean:.3f} ± {std:.3f}"


def _every(k: int) -> str:
    """``every`` or ``every k-th``."""
    return "every" if k == 1 else f"every {k}-th"


def _lm_training(strides: list[int]) -> str:
    """What a reprogramming cell's epoch reads of the training windows."""
    if len(strides) < 3:
        return f"{_every(strides[0])} training window"
    among = "" if strides[0] == 1 else f" (of every {strides[0]}-th)"
    return f"a fresh random 1/{strides[2]} of the training windows{among} each epoch"


def _markdown(rows: list[dict[str, Any]], summary: list[dict[str, Any]],
              settings: dict[str, Any], meta: dict[str, Any]) -> str:
    by = {(s["dataset"], s["horizon"], s["fraction"], s["method"]): s for s in summary}
    lines = [
        "# Forecasting: a frozen language model reprogrammed (Time-LLM) vs peers and ablations",
        "",
        *command_lines(meta),
        f"Seeds {settings['seeds']}; up to {settings['epochs']} epochs (patience "
        f"{settings['patience']}); validation MSE selects the epoch, the test split is scored "
        "once, every window (stride 1). Errors on the z-normalised scale (training rows' "
        "mean and std), averaged over windows and variables (channel-independent).  ",
        f"Reprogramming cells read {_lm_training(settings['lm_window_strides'])} and "
        f"{_every(settings['lm_window_strides'][1])} validation window (CPU cost); peers read "
        f"all of them (AutoETS, fitted on each window, {_every(settings['lm_window_strides'][1])}"
        " validation window: nothing is selected on it). Batch sizes: "
        f"{settings['batch_sizes']}.  ",
        f"Reprogrammed LM, named in advance: `{settings['reprogrammed']}`.  ",
        f"Machine: {describe(meta['machine'])}; {meta['date']}.",
        "",
    ]
    keys = sorted({(s["dataset"], s["fraction"]) for s in summary},
                  key=lambda k: (settings["sets"].index(k[0]) if k[0] in settings["sets"] else 9,
                                 -k[1]))
    for dataset, fraction in keys:
        horizons = sorted({s["horizon"] for s in summary
                           if s["dataset"] == dataset and s["fraction"] == fraction})
        share = "all training windows" if fraction == 1 else f"{fraction:g} of the training windows"
        lines += [
            f"## {dataset}, {share}",
            "",
            "| method | " + " | ".join(f"H={h} MSE | MAE" for h in horizons)
            + " | mean MSE | trained params | train s (median) |",
            "|---|" + "---|---|" * len(horizons) + "---|---|---|",
        ]
        for m in settings["methods"]:
            cells, means = [], []
            present = [by.get((dataset, h, fraction, m)) for h in horizons]
            if not any(present):
                continue
            for s in present:
                if s is None:
                    cells += ["–", "–"]
                    continue
                n = len(s["seeds"])
                cells += [_spread(s["mse_mean"], s["mse_std"], n), f"{s['mae_mean']:.3f}"]
                means.append(s["mse_mean"])
            mean = f"{statistics.mean(means):.3f}" if len(means) == len(horizons) else "–"
            last = next(s for s in present if s is not None)
            frozen = last["source_parameters"]
            share = f" ({100 * last['trainable_parameters'] / frozen:.2f}%)" if frozen else ""
            lines.append(f"| {md_cell(m)} | " + " | ".join(cells) + f" | {mean} | "
                         f"{last['trainable_parameters']:,}{share} | "
                         f"{last['train_seconds']:.0f} |")
        if dataset in PUBLISHED and fraction == 1:
            lines += ["", "Published (mean over the four horizons, MSE / MAE): " + "; ".join(
                f"{k} {v[0]:.3f} / {v[1]:.3f}" for k, v in PUBLISHED[dataset].items())]
        lines.append("")
    ours = settings["reprogrammed"]
    if any(r["method"] == ours for r in rows):
        lines += [
            f"## Paired: each ablation's test MSE minus `{ours}`'s (positive: the LM helps)",
            "",
            "| ablation | method | pairs | mean difference | LM better | LM worse |",
            "|---|---|---|---|---|---|",
        ]
        for label, method in settings["ablations"].items():
            c = paired(rows, ours, method)
            if c["pairs"]:
                lines.append(f"| {label} | `{method}` | {c['pairs']} | {c['mean_diff']:+.4f} | "
                             f"{c['wins']} | {c['losses']} |")
        lines.append("")
    skipped = settings.get("skipped") or []
    if skipped:
        lines += ["## Cells the data cannot form (not run)", ""]
        lines += [f"- {c['cell']}: {c['why']}" for c in skipped]
        lines.append("")
    return "\n".join(lines) + "\n"


def write_results(out: Path, rows: list[dict[str, Any]], settings: dict[str, Any],
                  commands: dict[str, Any]) -> None:
    """results.json / .csv / .md and ``mse_by_horizon.png`` from the finished rows
    (``commands``: :meth:`~reprogram_bench.ledger.Ledger.meta`)."""
    from reprogram.artifact import write_json

    meta = {**commands, "settings": settings, "machine": machine(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    summary = summarise(rows)
    write_json(out / "results.json", {"meta": meta, "rows": rows, "summary": summary})
    write_csv(out / "results.csv", [{k: v for k, v in r.items() if k != "test_mse_by_step"}
                                    for r in rows])
    (out / "results.md").write_text(_markdown(rows, summary, settings, meta))
    plot_results(out, summary, settings)


def _label(method: str, settings: dict[str, Any] | None = None) -> str:
    """A method's name in the plot's legend: the reprogrammed LM and its ablations (those of
    ``settings``, else the default LM's) by what they are, other methods by name (long ones
    cut)."""
    ours = (settings or {}).get("reprogrammed", REPROGRAMMED)
    ablations = (settings or {}).get("ablations", ABLATIONS)
    names = {ours: "reprogrammed LM", **{v: k for k, v in ablations.items()}}
    if method in names:
        return names[method]
    return method if len(method) <= 48 else method[:45] + "…"


def _off_scale(panel: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Methods of one panel whose every mean MSE is over 3 × the panel's median, with their
    range (drawn above the axis, named in a note)."""
    means = sorted(s["mse_mean"] for s in panel)
    if len(means) < 3:
        return {}
    median = means[len(means) // 2]
    by: dict[str, list[float]] = {}
    for s in panel:
        by.setdefault(s["method"], []).append(s["mse_mean"])
    return {m: (min(v), max(v)) for m, v in by.items() if min(v) > 3 * median}


def plot_results(out: Path, summary: list[dict[str, Any]], settings: dict[str, Any]) -> None:
    """``mse_by_horizon.png``: test MSE against the horizon, a panel per set and fraction."""
    from reprogram.figures import subplots

    keys = sorted({(s["dataset"], s["fraction"]) for s in summary})
    if not keys:
        return
    fig, axes = subplots(1, len(keys), figsize=(4.6 * len(keys), 4.0), squeeze=False)
    for ax, (dataset, fraction) in zip(axes[0], keys, strict=True):
        panel = [s for s in summary if s["dataset"] == dataset and s["fraction"] == fraction]
        off = _off_scale(panel)
        for j, m in enumerate(settings["methods"]):
            pts = sorted((s for s in summary if s["dataset"] == dataset
                          and s["fraction"] == fraction and s["method"] == m),
                         key=lambda s: s["horizon"])
            if not pts:
                continue
            ax.errorbar([s["horizon"] for s in pts], [s["mse_mean"] for s in pts],
                        yerr=[s["mse_std"] for s in pts], marker="o", capsize=3,
                        linestyle="-" if pts[0]["kind"] == "reprogramming" else "--",
                        color=f"C{j}", label=_label(m, settings))
        ax.set_xlabel("horizon (steps)")
        ax.set_ylabel("test MSE, normalised (± std, seeds)")
        if off:  # a far-off method would flatten the others: keep them readable, name it
            ax.set_ylim(top=1.1 * max(s["mse_mean"] + s["mse_std"] for s in panel
                                      if s["method"] not in off))
            ax.text(0.02, 0.98, "off scale: " + "; ".join(
                f"{_label(m, settings)} {lo:.3g}–{hi:.3g}" for m, (lo, hi) in off.items()),
                transform=ax.transAxes, va="top", fontsize=7)
        share = "all training windows" if fraction == 1 else f"{fraction:g} of training windows"
        ax.set_title(f"{dataset} ({share})")
        ax.grid(alpha=0.3)
    bottom = legend_below(fig, axes[0], ncol=3)
    fig.suptitle("reprogrammed LM and ablations (solid) vs forecasters (dashed)", fontsize=10)
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    fig.savefig(out / "mse_by_horizon.png", dpi=120, bbox_inches="tight")  # a wide legend whole
