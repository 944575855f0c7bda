"""Forecasts scored as the published code scores them: the test's last incomplete batch dropped.

The forecasting papers' loaders (Autoformer's lineage: PatchTST, DLinear, GPT4TS, Time-LLM)
build the test ``DataLoader`` with ``drop_last=True``, so the last ``W mod B`` test windows
(``W`` windows, batch ``B`` from each paper's script) are never scored. On ILI with ``B = 16``
those are the windows that forecast the 2020 spike, by far the hardest of the split, so the
published figures there are not comparable with a score over every window. Our protocol
scores every window, once; this module re-scores the finished artifacts of a
``bench forecast`` suite both ways, to say how far a gap to a published figure is the
protocol's. Nothing is selected on it: each cell's model is the one validation chose.

Per window ``w`` the error is the squared error averaged over the horizon and the set's
columns (windows are window-major, ``[W·C, H]``); the all-window mean equals the cell's
recorded ``test_mse`` (checked to 0.5%; the table shows the re-scored figures), the
published-protocol mean keeps the first
``⌊W / B⌋ · B`` windows.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from reprogram.errors import ReprogramError

#: How close (relative) the re-scored all-window MSE must come to the recorded one: batches of
#: another size pad a prompt program's inputs differently, which moves float32 sums a little.
TOLERANCE = 5e-3


def window_errors(directory: Path, target: str) -> torch.Tensor:
    """Squared error per test window ``[W]`` (mean over columns and horizon) of the artifact
    in ``directory`` on ``target``'s test split."""
    from reprogram.artifact import load_artifact
    from reprogram.data import load_target

    model, _ = load_artifact(directory)
    model.eval()
    data = load_target(target)
    x, y = data.test.x, data.test.y
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + 512]) for i in range(0, len(x), 512)])
    columns = len(str(data.info["columns"]).split(","))
    err = (pred.reshape(len(y), -1)[:, : y.shape[1]].double() - y.double()) ** 2
    return err.reshape(-1, columns, y.shape[1]).mean((1, 2))


def rescore(out: Path, rows: list[dict[str, Any]], batch: int,
            key_of: Any) -> list[dict[str, Any]]:
    """Every finished cell of ``rows`` whose run folder is in ``out/runs`` scored over all
    test windows and over the first ``⌊W / batch⌋ · batch``.

    Raises:
        ReprogramError: a re-scored all-window MSE differs from the recorded ``test_mse``.
    """
    scored = []
    for row in rows:
        directory = out / "runs" / key_of(row)
        if not (directory / "metrics.json").exists():
            continue
        errors = window_errors(directory, row["target"])
        kept = (len(errors) // batch) * batch
        every = float(errors.mean())
        if abs(every - row["test_mse"]) > TOLERANCE * abs(row["test_mse"]):
            raise ReprogramError(
                f"{directory}: re-scored test MSE {every:.4f} differs from the recorded "
                f"{row['test_mse']:.4f}; the artifact or the data changed since the run."
            )
        scored.append({
            **{k: row[k] for k in ("dataset", "horizon", "fraction", "method", "seed")},
            "windows": len(errors), "kept": kept, "test_mse": every,
            "test_mse_drop_last": float(errors[:kept].mean()) if kept else None,
            "dropped_mse": float(errors[kept:].mean()) if kept < len(errors) else None,
        })
    return scored


def markdown(scored: list[dict[str, Any]], batch: int, command: str,
             label: Any, published: dict[str, dict[str, tuple[float, float]]]) -> str:
    """The table: per method, each horizon's MSE over every window / with the last
    incomplete batch dropped (mean over seeds), and both means over the horizons."""
    groups: dict[tuple[str, str], dict[int, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list))
    for r in scored:
        if r["fraction"] == 1:
            groups[(r["dataset"], r["method"])][r["horizon"]].append(r)
    lines = [
        f"# Test MSE as the published code scores it (last incomplete batch of {batch} dropped)",
        "",
        f"Command: `{command}`  ",
        "Each cell's model is the one validation chose; it is scored again on the same test "
        "windows: over every window (our protocol, the recorded figure) and over the first "
        f"⌊W / {batch}⌋ · {batch} windows, as a test `DataLoader(batch_size={batch}, "
        "drop_last=True)` does. Mean over seeds, normalised scale.",
        "",
    ]
    for dataset in sorted({d for d, _ in groups}):
        methods = [m for d, m in groups if d == dataset]
        horizons = sorted({h for m in methods for h in groups[(dataset, m)]})
        counts = {h: next(iter(groups[(dataset, methods[0])].get(h, [])), None)
                  for h in horizons}
        lines += [f"## {dataset}", "",
                  "Windows scored / kept per horizon: " + ", ".join(
                      f"H={h}: {c['windows']} / {c['kept']}" for h, c in counts.items() if c),
                  "",
                  "| method | " + " | ".join(f"H={h} all / dropped" for h in horizons)
                  + " | mean all | mean, last batch dropped |",
                  "|---|" + "---|" * (len(horizons) + 2)]
        for method in methods:
            cells, every, dropped = [], [], []
            for h in horizons:
                rs = groups[(dataset, method)].get(h, [])
                if not rs:
                    cells.append("–")
                    continue
                a = statistics.mean(r["test_mse"] for r in rs)
                d = statistics.mean(r["test_mse_drop_last"] for r in rs)
                every.append(a)
                dropped.append(d)
                cells.append(f"{a:.3f} / {d:.3f}")
            full = len(every) == len(horizons)
            lines.append(
                f"| {label(method)} | " + " | ".join(cells)
                + (f" | {statistics.mean(every):.3f} | **{statistics.mean(dropped):.3f}** |"
                   if full else " | – | – |"))
        if dataset in published:
            lines += ["", "Published means (GPT4TS Table 3, their loaders' protocol): " + "; ".join(
                f"{k} {v[0]:.3f}" for k, v in published[dataset].items())]
        lines.append("")
    return "\n".join(lines)


__all__ = ["markdown", "rescore", "window_errors"]
