"""``reprogram bench sequences``: language-model reprogramming against the field's peers.

Peptide and molecule tasks (``amp``, ``amp-tm``, ``acp``, ``b3db``; ``solubility``, a
regression) at several shot counts and seeds: shots per class for classification, rows in all
for regression (``regression_shots``, 64, 256 and all by default). A cell (task × method ×
shots × seed) is an ordinary ``fit`` or ``baseline`` run
with its own artifact under ``OUT/runs/``; finished cells are never rerun, so a killed suite
continues where it stopped. After every cell the suite rewrites ``results.json``,
``results.csv``, ``results.md`` (accuracy and ROC-AUC, mean ± std over seeds, and paired
comparisons of the default reprogramming row against each peer: ROC-AUC, or RMSE for
regression) and ``auc_vs_shots.png`` (one panel per task, one line per default method; every
other variant the suite ran as well in ``auc_vs_shots_all.png``).

The default reprogramming row is fixed in advance (``DEFAULT_ROW``), not picked from the
table: picking the best row by its test score would be test-set selection.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reprogram.artifact import CONFIG, METRICS, read_json
from reprogram.errors import DataError, ReprogramError
from reprogram_bench import (
    cell_seconds,
    legend_below,
    md_cell,
    palette,
    selection_text,
    write_csv,
)
from reprogram_bench.ledger import command_lines, open_ledger
from reprogram_bench.machine import describe, machine
from reprogram_bench.pool import Failures, check_jobs, plan, run_tasks, running_line
from reprogram_bench.vision import parse_baseline, parse_method, run_method, split_source

TASKS = ("amp", "amp-tm", "acp", "b3db", "solubility")
#: Rows in all (0: every row) of the regression tasks' cells, as the issue's grid names them.
REGRESSION_SHOTS = (64, 256, 0)
#: Targets spelled as SMILES, where the RDKit peers apply.
MOLECULES = ("b3db", "b3db-scaffold", "solubility")
#: The reprogramming row named in advance as the library's default for sequence tasks.
DEFAULT_ROW = "soft-prompt+linear:init=probe"
DEFAULT_METHODS = (
    DEFAULT_ROW,
    "dictionary+linear:init=probe",
    "text+linear:init=probe,epochs=0",  # a linear probe on the frozen LM's pooled states
    "composition-forest",
    "composition-logreg",
    "length",
    "morgan-forest",
    "descriptors-forest",
    "finetune",  # every weight of the language model trained, with a head
    "scratch",  # a small network trained from scratch on the symbols
)
#: Peers that only apply to one kind of sequence.
ONLY = {"morgan-forest": MOLECULES, "descriptors-forest": MOLECULES}
#: Peers that only classify (left out of regression tasks).
CLASSIFIERS = ("composition-logreg",)


def is_regression(task: str) -> bool:
    """Whether ``task`` is a regression target: registered as one (``solubility``), or a
    user's file that says so (``csv:PATH#task=regression``)."""
    from reprogram.data import TARGETS

    if "#task=regression" in task:
        return True
    try:
        return "regression" in TARGETS.lookup(task.split("#")[0]).tags
    except ReprogramError:
        return False  # an unknown name fails clearly when its cell loads it


def _applies(task: str, method: str) -> bool:
    """Whether peer or program ``method`` runs on ``task`` (``ONLY``, ``CLASSIFIERS``)."""
    return why_not(task, method) is None


def why_not(task: str, method: str) -> str | None:
    """Why peer ``method`` does not run on ``task`` (None: it does): a classifier on a
    regression task, a molecule peer on sequences that are not SMILES (a ``csv:`` file is
    SMILES when it says ``#alphabet=smiles``)."""
    name, base = method.split(":")[0], task.split("#")[0]
    if is_regression(task) and name in CLASSIFIERS:
        return "it classifies only"
    smiles = "#alphabet=smiles" in task.replace(" ", "")
    if name in ONLY and base not in ONLY[name] and not smiles:
        return ("it reads molecules (SMILES)"
                + ("; add #alphabet=smiles to a csv: file of SMILES" if base.startswith("csv:")
                   else ""))
    return None


def not_applicable(
    tasks: Sequence[str], methods: Sequence[str]
) -> dict[tuple[str, str], list[str]]:
    """The peers of ``methods`` that do not run on some of ``tasks``: ``(method, why)`` →
    those tasks, in the order given (:func:`why_not`)."""
    skipped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t in tasks:
        for m in methods:
            if (why := why_not(t, m)) is not None:
                skipped[(m, why)].append(t)
    return dict(skipped)


def folder_name(part: str) -> str:
    """``part`` as one folder name: unchanged unless it holds a ``/`` or starts with ``.``
    (a ``csv:PATH`` task, an ``hf:ORG/NAME`` source), which would nest folders or climb out of
    ``runs/``; those keep what comes before the first ``/`` and after the last (``csv:`` and
    the file's name), joined by ``_``, plus a digest of the whole text, so two files of the
    same name in different folders stay apart."""
    if "/" not in part and not part.startswith("."):
        return part
    digest = hashlib.sha256(part.encode()).hexdigest()[:10]
    head, _, tail = part.partition("/")
    stem = re.sub(r"[^A-Za-z0-9_.:=+#,@-]+", "_", f"{head}_{tail.rsplit('/', 1)[-1]}")
    return f"{stem.lstrip('.')[:80]}-{digest}"


def check_regression_shots(tasks: tuple[str, ...], regression_shots: tuple[int, ...]) -> None:
    """Refuse, before any cell runs, a ``--regression-shots`` count above a regression task's
    training rows (the cell itself would name ``--shots``, the flag of ``fit``).

    Raises:
        DataError: a count is larger than a task's training split.
    """
    from reprogram.data import load_target

    wanted = max((k for k in regression_shots if k), default=0)
    for task in tasks:
        if wanted and is_regression(task):
            rows = len(load_target(task).train)
            if wanted > rows:
                raise DataError(
                    f"--regression-shots {wanted} asks for more rows than the {rows} training "
                    f"rows of {task}; give counts up to {rows}, or all (every row)."
                )


@dataclass(frozen=True)
class Cell:
    """One run of the suite: ``shots`` 0 means all training data."""

    task: str
    method: str
    shots: int
    seed: int

    @property
    def key(self) -> str:
        """The cell's folder under ``runs/``: task, method, shots, seed (a part naming a path,
        such as ``csv:data/peptides.csv``, is flattened into one folder name)."""
        return self._path(folder_name)

    @property
    def label(self) -> str:
        """The cell as progress lines and errors name it: the task and method as given."""
        return self._path(str)

    def _path(self, name: Callable[[str], str]) -> str:
        """``TASK/METHOD/shotsK/seedS`` (``all`` for every row), task and method through
        ``name``."""
        shots = "all" if self.shots == 0 else f"shots{self.shots}"
        return f"{name(self.task)}/{name(self.method)}/{shots}/seed{self.seed}"

    @property
    def is_reprogramming(self) -> bool:
        return "+" in self.method


def run_cell(
    cell: Cell, out: Path, *, source: str, epochs: int, select: str = "holdout"
) -> dict[str, Any]:
    """Run (or resume) one cell into ``out`` under the suite's ``select`` (a method's own
    ``select=`` wins); returns its metrics."""
    from reprogram.selection import unfinished

    resume = unfinished(out)
    method, source = split_source(cell.method, source)
    common: dict[str, Any] = dict(
        source=source,
        target=cell.task,
        shots=cell.shots or None,
        epochs=epochs,
        seed=cell.seed,
        select=select,
        out=str(out),
        resume=resume,
        overwrite=not resume,
        progress=False,
    )
    return run_method(method, common)


def _row(cell: Cell, directory: Path) -> dict[str, Any]:
    m = json.loads((directory / METRICS).read_text())
    return {
        "task": cell.task,
        "method": cell.method,
        "kind": "reprogramming" if cell.is_reprogramming else "peer",
        "shots": cell.shots,
        "seed": cell.seed,
        "val_accuracy": m.get("val_accuracy"),
        "val_rmse": m.get("val_rmse"),
        "test_accuracy": m.get("test_accuracy"),
        "test_roc_auc": m.get("test_roc_auc"),
        "test_rmse": m.get("test_rmse"),
        "test_r2": m.get("test_r2"),
        "trainable_parameters": m["trainable_parameters"],
        "source_parameters": m["source_parameters"],
        "train_seconds": cell_seconds(directory, m),
        "best_epoch": m.get("best_epoch"),
    }


def cells_for(
    tasks: tuple[str, ...],
    methods: tuple[str, ...],
    shots: tuple[int, ...],
    seeds: tuple[int, ...],
    regression_shots: tuple[int, ...] | None = None,
) -> list[Cell]:
    """The grid, in the order it runs: shot counts as given (a regression task takes
    ``regression_shots``, rows in all; ``shots`` when None), then tasks, seeds, methods."""
    reg = shots if regression_shots is None else regression_shots
    count = max(len(shots), len(reg))
    return [
        Cell(t, m, grid[i], s)
        for i in range(count)
        for t in tasks
        for grid in [reg if is_regression(t) else shots]
        if i < len(grid)
        for s in seeds
        for m in methods
        if _applies(t, m)
    ]


def shots_of(task: str, settings: dict[str, Any]) -> list[int]:
    """The shot counts of ``task`` in a suite's ``settings`` (regression: rows in all),
    smallest first and ``all`` (0) last."""
    grid = settings["shots"]
    if is_regression(task):
        grid = settings.get("regression_shots") or grid
    return _ascending(grid)


def _ascending(grid: list[int] | None) -> list[int]:
    """Shot counts smallest first, ``all`` (0) last."""
    return sorted(grid or (), key=lambda k: (k == 0, k))


def run_sequences(
    out: str | Path,
    *,
    tasks: tuple[str, ...] = TASKS,
    shots: tuple[int, ...] = (8, 32),
    regression_shots: tuple[int, ...] = REGRESSION_SHOTS,
    seeds: tuple[int, ...] = (0, 1, 2),
    methods: tuple[str, ...] = DEFAULT_METHODS,
    source: str = "minilm-l6",
    epochs: int = 10,
    command: str | None = None,
    progress: bool = True,
    report_only: bool = False,
    jobs: int = 1,
    select: str = "holdout",
) -> list[dict[str, Any]]:
    """Run every missing cell, then write the tables and the plot; returns all rows.

    ``select``: how every cell chooses (``holdout``: 20% of the shots validate; ``refit`` or
    ``kfold:K``: they choose, then one refit on every shot; see :mod:`reprogram.selection`),
    the same for reprogramming rows and peers; a suite directory keeps one.
    ``jobs``: cells run at once, each in a worker process (:mod:`reprogram_bench.pool`).
    ``shots`` are per class for classification tasks; ``regression_shots`` are rows in all
    for regression tasks (0: every row). ``report_only``: run nothing; write the tables
    from the cells already finished."""
    check_jobs(jobs)
    from reprogram.selection import parse_select

    parse_select(select)
    for method in methods:
        body, _src = split_source(method, source)
        (parse_method if "+" in body else parse_baseline)(body)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = cells_for(tasks, methods, shots, seeds, regression_shots)
    settings = {
        "source": source,
        "epochs": epochs,
        "tasks": list(tasks),
        "shots": list(shots),
        "regression_shots": list(regression_shots),
        "seeds": list(seeds),
        "methods": list(methods),
        "default_row": DEFAULT_ROW,
        "select": select,
    }
    ledger = open_ledger(out, settings, command or "reprogram bench sequences", _key,
                         shared=("source", "epochs", "select"), runs_cells=not report_only,
                         defaults={"select": "holdout"})
    rows: list[dict[str, Any]] = []
    by_index: dict[int, dict[str, Any]] = {}
    started = time.perf_counter()

    def report(i: int, row: dict[str, Any], write: bool = True) -> None:
        by_index[i] = row  # the rows in grid order, whatever order cells finish in
        rows[:] = [by_index[k] for k in sorted(by_index)]
        if progress:
            print(
                f"[{i}/{len(cells)}] {cells[i - 1].label}  {_scores(row)}  "
                f"{row['train_seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        if write:
            write_results(out, ledger.rows(rows), ledger.settings, ledger.meta())

    if progress:
        for (m, why), ts in not_applicable(tasks, methods).items():
            print(f"note: {m} does not run on {', '.join(ts)}: {why}", file=sys.stderr)
    if not report_only:
        check_regression_shots(tasks, regression_shots)
        check_unchanged(cells, out)
    pending = plan(cells, out, ledger, _row, run_cell,
                   dict(source=source, epochs=epochs, select=select),
                   report, run=not report_only)
    failures = Failures(out, progress)
    for done in run_tasks(pending, jobs, before=running_line(started, progress),
                          progress=progress):
        cell = cells[done.index - 1]
        if done.error is not None:
            failures.add(f"[{done.index}/{len(cells)}] {cell.label}", cell.label, done.error)
            continue
        report(done.index, _row(cell, out / "runs" / cell.key))
    if (report_only or failures.failed) and not rows and ledger.recorded:
        write_results(out, ledger.rows([]), ledger.settings, ledger.meta())
    failures.raise_any()
    return rows


def check_unchanged(cells: list[Cell], out: Path) -> None:
    """Refuse to go on when a ``csv:`` file changed since its finished cells ran (their
    ``config.json`` records digests of the test and training rows): a rerun skips finished
    cells, so their old scores would stand beside new ones unnoticed."""
    from reprogram.data import load_target
    from reprogram.train import recorded_data_matches

    first: dict[str, tuple[str, Path]] = {}
    for cell in cells:
        directory = out / "runs" / cell.key
        if cell.task.startswith("csv:") and (directory / METRICS).exists():
            first.setdefault(cell.task, (cell.key, directory / CONFIG))
    for task, (key, config) in first.items():
        if not recorded_data_matches(read_json(config, "a cell's config"), load_target(task)):
            raise DataError(
                f"{task} changed since the finished cells under {out / 'runs'} ran (the rows "
                f"{key} trained or was tested on differ from the file's now), and a rerun keeps "
                "finished cells: give a new --out, or delete that task's folders under "
                f"{out / 'runs'} to run them again."
            )


def _scores(row: dict[str, Any]) -> str:
    """A finished row's test figures for the progress line."""
    if row.get("test_rmse") is not None:
        return f"rmse {row['test_rmse']:.4f}  r2 {row['test_r2']:.3f}"
    auc = row["test_roc_auc"]
    return f"acc {row['test_accuracy']:.4f}  auc {'–' if auc is None else f'{auc:.4f}'}"


def _key(row: dict[str, Any]) -> str:
    """A recorded row's cell key."""
    return Cell(row["task"], row["method"], int(row["shots"]), int(row["seed"])).key


#: The derived row: per task, shot count and seed, the reprogramming row validation chose.
CHOSEN = "chosen by validation"


def chosen_by_validation(rows: list[dict[str, Any]], methods: list[str]) -> list[dict[str, Any]]:
    """Per (task, shots, seed), of the reprogramming rows of ``methods``, the one with the best
    validation score (the highest ``val_accuracy``; regression: the lowest ``val_rmse``), ties
    to the method listed first (the default row leads): a copy named :data:`CHOSEN` with the
    chosen method under ``chosen``. Rows without a validation score (an ``epochs=0`` probe under
    k-fold selection, which holds nothing out) are not candidates, and only the (task, shots,
    seed) where every method of ``methods`` finished are chosen in. No test score is read to
    choose, so comparing this row with a peer is not test-set selection."""
    order = {m: i for i, m in enumerate(methods)}
    finished: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["kind"] == "reprogramming" and r["method"] in order:
            finished[(r["task"], r["shots"], r["seed"])].append(r)

    def validation(r: dict[str, Any]) -> float | None:
        """Higher is better: the accuracy, or minus the RMSE of a regression row."""
        if r.get("test_rmse") is not None:
            return None if r.get("val_rmse") is None else -r["val_rmse"]
        return r.get("val_accuracy")

    chosen = []
    for rs in finished.values():
        scored = [(v, r) for r in rs if (v := validation(r)) is not None]
        if len(rs) < len(order) or not scored:  # the choice is always among the same rows
            continue
        _, best = min(scored, key=lambda vr: (-vr[0], order[vr[1]["method"]]))
        chosen.append({**best, "method": CHOSEN, "chosen": best["method"]})
    return chosen


def _paired_sections(
    rows: list[dict[str, Any]], ours: str, title: str, settings: dict[str, Any]
) -> list[str]:
    """Markdown sections pairing ``ours`` with each peer of ``settings`` per task and seed: one
    on test ROC-AUC over the classification shots, one on test RMSE over the regression rows
    (``title`` names ``ours``; a section with no pair is left out)."""
    peers = [m for m in settings["methods"] if "+" not in m]
    lines: list[str] = []
    for metric, label, grid in (
        ("test_roc_auc", "test ROC-AUC", settings["shots"]),
        ("test_rmse", "test RMSE, negative: lower is ours", settings.get("regression_shots")),
    ):
        table = []
        for k in _ascending(grid):
            for p in peers:
                c = paired_auc(rows, ours, p, k, metric)
                if c["pairs"]:
                    table.append(
                        f"| {_shots_text(k)} | {md_cell(p)} | {c['pairs']} | "
                        f"{c['mean_diff']:+.3f} | {c['wins']} | {c['losses']} |"
                    )
        if table:
            lines += [
                f"## Paired: {title} minus each peer ({label}, per task and seed)",
                "",
                "| shots | peer | pairs | mean difference | wins | losses |",
                "|---|---|---|---|---|---|",
                *table,
                "",
            ]
    return lines


def _chosen_lines(rows: list[dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    """The markdown section on the row validation chose: what it chose, its test score, and
    paired against each peer (empty when fewer than two reprogramming rows ran)."""
    ran = {r["method"] for r in rows if r["kind"] == "reprogramming"}
    programs = [m for m in settings["methods"] if m in ran]
    programs = [m for m in programs if m in DEFAULT_METHODS] or programs  # variants: not chosen
    if len(programs) < 2:
        return []
    chosen = chosen_by_validation(rows, programs)
    if not chosen:
        return []
    short = {m: m.split("+")[0] for m in programs}  # the program's name, where that is unique
    if len(set(short.values())) < len(programs):
        short = {m: md_cell(m) for m in programs}
    lines = [
        f"## The reprogramming row {CHOSEN}",
        "",
        "Per task, shot count and seed, of "
        + ", ".join(f"`{m}`" for m in programs)
        + ", the row with the best validation score (accuracy; regression: RMSE), ties to "
        "the one listed first; no test score is read to choose it.",
        "",
        "| task | shots | chosen (seeds) | test AUC / RMSE, mean ± std |",
        "|---|---|---|---|",
    ]
    for task in settings["tasks"]:
        for k in shots_of(task, settings):
            rs = [c for c in chosen if c["task"] == task and c["shots"] == k]
            if not rs:
                continue
            regression = rs[0].get("test_rmse") is not None
            scores = [c["test_rmse" if regression else "test_roc_auc"] for c in rs]
            scores = [v for v in scores if v is not None]
            if not scores:
                continue
            spread = (f"{statistics.mean(scores):.3f} ± {statistics.stdev(scores):.3f}"
                      if len(scores) > 1 else f"{scores[0]:.3f} (n=1)")
            picks = ", ".join(
                f"{short[c['chosen']]} ({c['seed']})" for c in sorted(rs, key=lambda c: c["seed"])
            )
            lines.append(
                f"| {md_cell(task)} | {_shots_text(k, regression)} | {picks} | {spread} |"
            )
    return [*lines, "", *_paired_sections(rows + chosen, CHOSEN, f"the row {CHOSEN}", settings)]


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds of accuracy and ROC-AUC (regression: RMSE and R²) per (task,
    method, shots)."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["method"], r["shots"])].append(r)
    out = []
    for (task, method, shots), rs in groups.items():
        accs = [r["test_accuracy"] for r in rs if r["test_accuracy"] is not None]
        aucs = [r["test_roc_auc"] for r in rs if r["test_roc_auc"] is not None]
        rmses = [r["test_rmse"] for r in rs if r.get("test_rmse") is not None]
        r2s = [r["test_r2"] for r in rs if r.get("test_r2") is not None]
        out.append(
            {
                "task": task,
                "method": method,
                "kind": rs[0]["kind"],
                "shots": shots,
                "seeds": sorted(r["seed"] for r in rs),
                "acc_mean": statistics.mean(accs) if accs else None,
                "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "rmse_mean": statistics.mean(rmses) if rmses else None,
                "rmse_std": statistics.stdev(rmses) if len(rmses) > 1 else 0.0,
                "r2_mean": statistics.mean(r2s) if r2s else None,
                "auc_mean": statistics.mean(aucs) if aucs else None,
                "auc_std": statistics.stdev(aucs) if len(aucs) > 1 else 0.0,
                "auc_n": len(aucs),
                "rmse_n": len(rmses),
                "trainable_parameters": rs[0]["trainable_parameters"],
                "params_range": (
                    min(r["trainable_parameters"] for r in rs),
                    max(r["trainable_parameters"] for r in rs),
                ),
                "source_parameters": rs[0]["source_parameters"],
                "train_seconds": statistics.median(r["train_seconds"] for r in rs),
            }
        )
    return out


def _params_text(
    by: dict[tuple[str, str, Any], dict[str, Any]], task: str, method: str, shots: list[Any]
) -> str:
    """The trained-parameter count of one table row: one number, or ``low–high`` where it
    changes with the data (a forest's nodes grow with its training rows), with its share of
    the frozen source where there is one."""
    groups = [by[(task, method, k)] for k in shots if (task, method, k) in by]
    low = min(g["params_range"][0] for g in groups)
    high = max(g["params_range"][1] for g in groups)
    text = f"{low:,}" if low == high else f"{low:,}–{high:,}"
    frozen = groups[-1]["source_parameters"]
    return text + (f" ({100 * high / frozen:.2f}%)" if frozen else "")


def paired_auc(
    rows: list[dict[str, Any]], ours: str, theirs: str, shots: int, metric: str = "test_roc_auc"
) -> dict[str, Any]:
    """``ours`` − ``theirs`` in ``metric`` (test ROC-AUC; ``test_rmse`` for regression) over
    every (task, seed) both finished at ``shots``: the mean difference, wins/losses (a win is
    a higher AUC, or a lower RMSE) and the pairs counted."""
    value = {
        (r["method"], r["task"], r["seed"]): r[metric]
        for r in rows
        if r["shots"] == shots and r.get(metric) is not None
    }
    diffs = [
        value[(ours, t, s)] - value[(theirs, t, s)]
        for (m, t, s) in value
        if m == ours and (theirs, t, s) in value
    ]
    sign = -1 if metric == "test_rmse" else 1
    return {
        "pairs": len(diffs),
        "mean_diff": statistics.mean(diffs) if diffs else None,
        "wins": sum(sign * d > 0 for d in diffs),
        "losses": sum(sign * d < 0 for d in diffs),
    }


def _spread(mean: float, std: float, n: int, seeds: int) -> str:
    """``mean ± std`` over the ``n`` seeds with a value, ``mean (n=1)`` for one; ``(n=…)``
    also when fewer than ``seeds`` have one (the suite's seeds not all run for this cell, or
    a score that is undefined on some)."""
    if n == 1:
        return f"{mean:.3f} (n=1)"
    return f"{mean:.3f} ± {std:.3f}" + (f" (n={n})" if n < seeds else "")


def _shots_text(shots: int, regression: bool = False) -> str:
    if shots == 0:
        return "all"
    return f"{shots} rows" if regression else str(shots)


def _markdown(
    rows: list[dict[str, Any]], summary: list[dict[str, Any]], settings: dict[str, Any], meta: dict
) -> str:
    by = {(s["task"], s["method"], s["shots"]): s for s in summary}
    per_class = not all(is_regression(t) for t in settings["tasks"])
    default_ran = any(r["method"] == settings["default_row"] for r in rows)
    lines = [
        f"# Sequences: {_headline(summary, settings['source'])}",
        "",
        *command_lines(meta),
        f"Seeds {settings['seeds']}; {settings['epochs']} epochs for trained programs; "
        f"{selection_text(settings.get('select', 'holdout'), 'shots', per_class)} (every row "
        "alike, "
        "unless a method names its own `select=`); the test split (a fixed 20% of each set, "
        "seed 0) is scored once per run. Shots are per class (regression: rows in all); `all` is "
        "every training row.  ",
        f"Default reprogramming row, fixed in advance: `{settings['default_row']}`"
        f"{'' if default_ran else ' (not in this grid)'}.  ",
        f"Machine: {describe(meta['machine'])}; {meta['date']}.",
        "",
    ]
    skipped = not_applicable(settings["tasks"], settings["methods"])
    if skipped:
        said = [f"`{md_cell(m)}` on {', '.join(f'`{md_cell(t)}`' for t in ts)} ({why})"
                for (m, why), ts in skipped.items()]
        lines += ["Not run, as they do not apply: " + "; ".join(said) + ".", ""]
    lines += [
        "Test ROC-AUC / accuracy (regression tasks: RMSE / R²), mean ± std over seeds:",
        "",
    ]
    for task in settings["tasks"]:
        shots = [k for k in shots_of(task, settings)
                 if any(s["shots"] == k and s["task"] == task for s in summary)]
        present = [m for m in settings["methods"] if any((task, m, k) in by for k in shots)]
        if not present:
            continue
        regression = any(s["rmse_mean"] is not None for s in summary if s["task"] == task)
        figures, second = ("RMSE", "R²") if regression else ("AUC", "acc")
        unit = "" if regression else " shots"
        lines += [
            f"## {task}",
            "",
            "| method | "
            + " | ".join(
                f"{_shots_text(k, regression)}{unit} {figures} | {second}" for k in shots
            )
            + " | trained params |",
            "|---|" + "---|---|" * len(shots) + "---|",
        ]
        for m in present:
            cells = []
            for k in shots:
                s = by.get((task, m, k))
                if s is None:
                    cells += ["–", "–"]
                    continue
                # a mean over fewer seeds than the suite's names its n
                suite = max(len(s["seeds"]), len(settings["seeds"]))
                if s["rmse_mean"] is not None:
                    cells += [_spread(s["rmse_mean"], s["rmse_std"], s["rmse_n"], suite),
                              f"{s['r2_mean']:.3f}"]
                else:
                    auc = ("–" if s["auc_mean"] is None
                           else _spread(s["auc_mean"], s["auc_std"], s["auc_n"], suite))
                    cells += [auc, f"{s['acc_mean']:.3f}"]
            params = _params_text(by, task, m, shots)
            lines.append(f"| {md_cell(m)} | " + " | ".join(cells) + f" | {params} |")
        lines.append("")
    default = settings["default_row"]
    if default_ran:
        lines += _paired_sections(rows, default, f"`{default}`", settings)
    lines += _chosen_lines(rows, settings)
    return "\n".join(lines) + "\n"


def _headline(summary: list[dict[str, Any]], source: str, styles: bool = False) -> str:
    """What a table or figure compares, from the kinds of row it holds: ``source``
    reprogrammed, the peers, or both (``styles``: with the figure's line styles)."""
    kinds = {s["kind"] for s in summary}
    ours = f"{source} reprogrammed" + (" (solid)" if styles else "")
    peers = "peers" + (" (dashed)" if styles else "")
    if kinds == {"peer"}:
        return f"{peers}, no reprogramming row"
    return ours if "peer" not in kinds else f"{ours} vs {peers}"


def write_results(
    out: Path, rows: list[dict[str, Any]], settings: dict[str, Any], commands: dict[str, Any]
) -> None:
    """results.json / .csv / .md and ``auc_vs_shots.png`` from the finished rows
    (``commands``: :meth:`~reprogram_bench.ledger.Ledger.meta`)."""
    from reprogram.artifact import write_json

    meta = {
        **commands,
        "settings": settings,
        "machine": machine(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    summary = summarise(rows)
    write_json(out / "results.json", {"meta": meta, "rows": rows, "summary": summary})
    write_csv(out / "results.csv", rows)
    (out / "results.md").write_text(_markdown(rows, summary, settings, meta))
    plot_results(out, summary, settings)


def plot_results(out: Path, summary: list[dict[str, Any]], settings: dict[str, Any]) -> None:
    """``auc_vs_shots.png``: test ROC-AUC (regression: RMSE) against shots, a panel per task,
    for the suite's default methods (the default rows and every peer) that ran (when no
    default program ran, the programs that did); and, when the suite ran other variants too,
    ``auc_vs_shots_all.png`` with every method (20 lines in one panel cannot be told apart,
    so the first figure stays readable). A method has one colour in both."""
    ran = [m for m in settings["methods"] if any(s["method"] == m for s in summary)]
    main = [m for m in ran if m in DEFAULT_METHODS] or ran
    if not any("+" in m for m in main):  # no default program ran: show the programs that did
        main = [m for m in ran if m in main or "+" in m]
    colour = palette(ran)  # one colour per method in both figures
    _plot(out / "auc_vs_shots.png", summary, settings, main, colour)
    if len(main) < len(ran):
        _plot(out / "auc_vs_shots_all.png", summary, settings, ran, colour)


def _plot(
    path: Path,
    summary: list[dict[str, Any]],
    settings: dict[str, Any],
    methods: list[str],
    colour: dict[str, Any],
) -> None:
    """One figure: a panel per task, a line per method of ``methods`` in its ``colour``."""
    from reprogram.figures import subplots

    tasks = [t for t in settings["tasks"] if any(s["task"] == t for s in summary)]
    if not tasks:
        return
    cols = min(len(tasks), 3)  # six panels in one row are too narrow to read
    grid_rows = -(-len(tasks) // cols)
    fig, axes = subplots(
        grid_rows, cols, figsize=(4.6 * cols, 3.9 * grid_rows), squeeze=False
    )
    panels = list(axes.flat)
    for ax in panels[len(tasks):]:
        ax.set_visible(False)
    for ax, task in zip(panels[: len(tasks)], tasks, strict=True):
        order = shots_of(task, settings)
        regression = any(s["rmse_mean"] is not None for s in summary if s["task"] == task)
        key = "rmse" if regression else "auc"
        ax.set_ylabel(f"test {'RMSE' if regression else 'ROC-AUC'} (mean ± std over seeds)")
        for m in methods:
            pts = [s for s in summary if s["task"] == task and s["method"] == m]
            pts = sorted((s for s in pts if s["shots"] in order),
                         key=lambda s: order.index(s["shots"]))
            pts = [s for s in pts if s[f"{key}_mean"] is not None]
            if not pts:
                continue
            ax.errorbar(
                [order.index(s["shots"]) for s in pts],
                [s[f"{key}_mean"] for s in pts],
                yerr=[s[f"{key}_std"] for s in pts],
                marker="o",
                linestyle="-" if pts[0]["kind"] == "reprogramming" else "--",
                color=colour[m],
                capsize=3,
                label=m,
            )
        ax.set_xticks(range(len(order)), [_shots_text(k) for k in order])
        ax.set_xlabel("training rows" if regression else "shots per class")
        ax.set_title(task)
        ax.grid(alpha=0.3)
    bottom = legend_below(fig, panels[: len(tasks)], ncol=4) / grid_rows
    shown = [s for s in summary if s["method"] in methods]
    fig.suptitle(_headline(shown, settings["source"], styles=True), fontsize=10)
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    fig.savefig(path, dpi=120, bbox_inches="tight")  # a wide legend whole
