"""One overview of the forecasting grid, read from the finished ``bench forecast`` folders.

The forecasting grid was run in several suite folders (one per protocol of the language-model
cells: a fixed sixteenth of the windows, a fresh sixteenth each epoch, every window on ILI, the
10% cells). This script reads their ``results.json`` (nothing is rerun or rescored) and writes,
for every set and share of the training windows, one row per *role*: the reprogrammed LM, its
three ablations (Tan et al.) and the five peers, with

- the mean test MSE over the horizons it covers, and which horizons and seeds those are;
- the language model paired with each ablation, cell by cell (same set, horizon, share, seed
  *and* protocol, so a fixed-subset cell is never paired with a fresh-sample one), with the
  horizons where the gap is larger than the spread over seeds;
- ``mse_by_horizon.png``: test MSE against the horizon, one panel per set and share.

A role's cells on one set and share come from the first folder named that holds any of them:
name the current protocol's folders first.

    python benchmarks/forecast_overview.py --out benchmarks/results/forecast_overview \\
        benchmarks/results/bench_forecast_lm_sample \\
        benchmarks/results/bench_forecast_lm_few_sample benchmarks/results/bench_forecast_ili \\
        benchmarks/results/bench_forecast_sets benchmarks/results/bench_forecast
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reprogram_bench import legend_below, write_csv
from reprogram_bench.forecast import (
    ABLATIONS,
    DETERMINISTIC,
    PEERS,
    PUBLISHED,
    REPROGRAMMED,
    _off_scale,
)
from reprogram_bench.machine import describe, machine

#: Roles in table order: the language model, its ablations, then the peers.
LM_ROLE = "reprogrammed LM"
ROLES: dict[str, str] = {
    REPROGRAMMED: LM_ROLE,
    **{method: role for role, method in ABLATIONS.items()},
    **{peer: peer for peer in PEERS},
}
ROLE_ORDER = list(dict.fromkeys(ROLES.values()))
PEER_NAMES = {"linear": "RLinear", "dlinear": "DLinear", "patchtst": "PatchTST",
              "seasonal-naive": "seasonal naive", "autoets": "AutoETS"}


def _std(values: list[float]) -> float:
    """The standard deviation over seeds (0 for one seed)."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def protocol(row: dict[str, Any]) -> str:
    """What a cell read beyond its set, lookback and horizon (``#sample=16#val_stride=8``;
    ``every window`` when nothing): the target's options other than those two, sorted (a
    direct ``fit`` may name them in another order than the bench)."""
    options = sorted(o for o in row["target"].split("#")[1:]
                     if not o.startswith(("lookback=", "horizon=")))
    return "#" + "#".join(options) if options else "every window"


def pick(folders: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Each role's rows per (set, share) from the first folder holding any, with the folder
    (``suite``) and protocol added; then every row of every folder (a cell found in several
    folders once, from the first), for the pairs; and the methods left out (not a role)."""
    chosen: dict[tuple[str, float, str], list[dict[str, Any]]] = {}
    every: dict[tuple[str, str, float, int, int, str], dict[str, Any]] = {}
    skipped: set[str] = set()
    for folder in folders:
        path = folder / "results.json"
        if not path.is_file():
            sys.exit(f"{folder}: no results.json (run `reprogram bench forecast` there first).")
        found: dict[tuple[str, float, str], list[dict[str, Any]]] = defaultdict(list)
        for r in json.loads(path.read_text())["rows"]:
            role = ROLES.get(r["method"])
            if role is None:
                skipped.add(r["method"])
                continue
            found[(r["dataset"], float(r["fraction"]), role)].append(
                {**r, "role": role, "suite": folder.name, "protocol": protocol(r)})
        for key, rows in found.items():
            chosen.setdefault(key, rows)
            for r in rows:
                every.setdefault((r["role"], r["dataset"], float(r["fraction"]),
                                  int(r["horizon"]), int(r["seed"]), r["protocol"]), r)
    return ([r for rows in chosen.values() for r in rows], list(every.values()),
            sorted(skipped))


def _horizons(rows: list[dict[str, Any]]) -> dict[tuple[str, float], list[int]]:
    """The horizons any role reached per (set, share): those the share can form."""
    out: dict[tuple[str, float], set[int]] = defaultdict(set)
    for r in rows:
        out[(r["dataset"], r["fraction"])].add(int(r["horizon"]))
    return {k: sorted(v) for k, v in out.items()}


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (set, share, role): mean test MSE over seeds per horizon, the mean over
    those horizons, the seeds and the protocol(s) read."""
    groups: dict[tuple[str, float, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], r["fraction"], r["role"])].append(r)
    reach = _horizons(rows)
    out = []
    for (dataset, fraction, role), rs in groups.items():
        by_h: dict[int, list[float]] = defaultdict(list)
        for r in rs:
            by_h[int(r["horizon"])].append(float(r["test_mse"]))
        per = {h: {"mean": statistics.mean(v), "std": _std(v), "seeds": len(v)}
               for h, v in sorted(by_h.items())}
        out.append({
            "dataset": dataset, "fraction": fraction, "role": role,
            "method": rs[0]["method"], "suite": rs[0]["suite"],
            "protocols": sorted({r["protocol"] for r in rs}),
            "horizons": list(per), "all_horizons": list(per) == reach[(dataset, fraction)],
            "seeds": sorted({int(r["seed"]) for r in rs}),
            "mse_by_horizon": per,
            "mean_mse": statistics.mean(p["mean"] for p in per.values()),
            "train_seconds_median": statistics.median(float(r["train_seconds"]) for r in rs),
        })
    return sorted(out, key=lambda s: (s["fraction"] != 1.0, s["dataset"],
                                      ROLE_ORDER.index(s["role"])))


def pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The LM against each ablation per (set, share, protocol): ablation − LM test MSE over
    the cells both finished (positive: the LM is better), and the horizons where the mean gap
    exceeds the larger of the two spreads over seeds."""
    cell = {(r["role"], r["dataset"], float(r["fraction"]), int(r["horizon"]), int(r["seed"]),
             r["protocol"]): float(r["test_mse"]) for r in rows}
    # (set, share, protocol, ablation) -> horizon -> [(LM, ablation)] over the seeds
    found: dict[tuple[str, float, str, str], dict[int, list[tuple[float, float]]]] = {}
    for (role, dataset, fraction, h, seed, proto), mse in cell.items():
        if role != LM_ROLE:
            continue
        for ablation in ABLATIONS:
            other = cell.get((ablation, dataset, fraction, h, seed, proto))
            if other is not None:
                found.setdefault((dataset, fraction, proto, ablation), defaultdict(list))[
                    h].append((mse, other))
    out = []
    order = list(ABLATIONS)
    for (dataset, fraction, proto, ablation), by_h in sorted(
            found.items(), key=lambda kv: (kv[0][0], -kv[0][1], kv[0][2], order.index(kv[0][3]))):
        diffs = {h: [b - a for a, b in v] for h, v in by_h.items()}
        flat = [x for v in diffs.values() for x in v]
        beyond = {h: ("LM" if statistics.mean(d) > 0 else ablation)
                  for h, d in diffs.items() if len(d) > 1
                  and abs(statistics.mean(d)) > max(_std([a for a, _ in by_h[h]]),
                                                    _std([b for _, b in by_h[h]]))}
        out.append({"dataset": dataset, "fraction": fraction, "protocol": proto,
                    "ablation": ablation, "pairs": len(flat), "horizons": sorted(diffs),
                    "mean_diff": statistics.mean(flat),
                    "lm_better": sum(x > 0 for x in flat),
                    "lm_worse": sum(x < 0 for x in flat),
                    "beyond_spread": {str(h): who for h, who in sorted(beyond.items())}})
    return out


def _share(fraction: float) -> str:
    return "all training windows" if fraction == 1 else f"{fraction:g} of the training windows"


def _name(role: str) -> str:
    return PEER_NAMES.get(role, role)


def _cell(s: dict[str, Any]) -> str:
    """``0.439``, or ``0.439 (H 96; 1 seed)`` where it covers fewer horizons or seeds than
    the set's (seeds per horizon; the deterministic peers need one)."""
    seeds = {p["seeds"] for p in s["mse_by_horizon"].values()}
    note = []
    if not s["all_horizons"]:
        note.append("H " + ", ".join(str(h) for h in s["horizons"]))
    if seeds != {3} and s["role"] not in DETERMINISTIC:
        note.append("/".join(str(n) for n in sorted(seeds))
                    + (" seed" if seeds == {1} else " seeds"))
    return f"{s['mean_mse']:.3f}" + (f" ({'; '.join(note)})" if note else "")


def markdown(summary: list[dict[str, Any]], paired: list[dict[str, Any]],
             meta: dict[str, Any]) -> str:
    """The overview's tables: mean MSE per set and role, then the paired comparisons."""
    lines = [
        "# Forecasting: every set, the language model, its ablations and the peers", "",
        f"    {meta['command']}", "",
        "Read from the suites' `results.json` (nothing rerun): " + ", ".join(
            f"`{s}`" for s in meta["suites"]) + ". A role's cells on a set and share come "
        "from the first of these that holds any. Mean test MSE (normalised scale) over the "
        "horizons the role covers, each horizon's figure the mean over its seeds; a figure "
        "whose horizons or seeds fall short of the set's is marked with what it covers. "
        "Bold: the lowest among roles that cover every horizon the share can form.",
        f"Machine of this report: {meta['machine_text']}; {meta['date']}.", "",
    ]
    for fraction in sorted({s["fraction"] for s in summary}, reverse=True):
        part = [s for s in summary if s["fraction"] == fraction]
        sets = sorted({s["dataset"] for s in part})
        lines += [f"## {_share(fraction).capitalize()}", "",
                  "| set | " + " | ".join(_name(r) for r in ROLE_ORDER) + " |",
                  "|---|" + "---|" * len(ROLE_ORDER)]
        for dataset in sets:
            got = {s["role"]: s for s in part if s["dataset"] == dataset}
            full = [s["mean_mse"] for s in got.values() if s["all_horizons"]]
            best = min(full) if full else None
            cells = []
            for role in ROLE_ORDER:
                s = got.get(role)
                text = "–" if s is None else _cell(s)
                if s is not None and s["all_horizons"] and s["mean_mse"] == best:
                    text = f"**{text}**"
                cells.append(text)
            lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
        anchored = [d for d in sets if d in PUBLISHED]
        if fraction == 1 and anchored:  # the published tables train on every window
            lines += ["", "Published mean MSE over the four horizons (GPT4TS Table 3, every "
                      "training window): " + "; ".join(
                          f"{d}: " + ", ".join(f"{method} {mse:.3f}"
                                               for method, (mse, _) in PUBLISHED[d].items())
                          for d in anchored) + "."]
        lines += ["", "Where each language-model row comes from:", ""]
        for s in part:
            if s["role"] == LM_ROLE or s["role"] in ABLATIONS:
                lines.append(f"- {s['dataset']}, {s['role']}: `{s['suite']}`, "
                             f"{' / '.join(s['protocols'])}, median {s['train_seconds_median']:.0f}"
                             " s of training a cell")
        lines.append("")
    lines += ["## The language model against each ablation (ablation − LM test MSE, "
              "paired by set, horizon, seed and protocol; positive: the LM helps)", "",
              "| set | share | protocol | ablation | pairs | horizons | mean difference | "
              "LM better | LM worse | beyond the spread |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for p in paired:
        beyond = ", ".join(f"{h}: {who}" for h, who in p["beyond_spread"].items()) or "none"
        lines.append(
            f"| {p['dataset']} | {p['fraction']:g} | `{p['protocol']}` | {p['ablation']} | "
            f"{p['pairs']} | "
            f"{', '.join(str(h) for h in p['horizons'])} | {p['mean_diff']:+.4f} | "
            f"{p['lm_better']} | {p['lm_worse']} | {beyond} |")
    lines += ["", "Beyond the spread: horizons where the mean paired gap exceeds the larger "
              "standard deviation over seeds of the two rows, and which side it favours."]
    if meta["left_out"]:
        lines += ["", "Other methods in these folders (not a role here): " + ", ".join(
            f"`{m}`" for m in meta["left_out"]) + "."]
    return "\n".join(lines) + "\n"


def plot(out: Path, summary: list[dict[str, Any]]) -> None:
    """``mse_by_horizon.png``: a panel per (share, set), a line per role (solid: the LM and
    its ablations, dashed: the peers)."""
    from reprogram.figures import subplots

    fractions = sorted({s["fraction"] for s in summary}, reverse=True)
    sets = sorted({s["dataset"] for s in summary})
    fig, axes = subplots(len(fractions), len(sets), figsize=(4.2 * len(sets),
                         3.6 * len(fractions)), squeeze=False)
    for i, fraction in enumerate(fractions):
        for j, dataset in enumerate(sets):
            ax = axes[i][j]
            panel = [s for s in summary if (s["dataset"], s["fraction"]) == (dataset, fraction)]
            off = _off_scale([{"method": s["role"], "mse_mean": p["mean"]}
                              for s in panel for p in s["mse_by_horizon"].values()])
            for k, role in enumerate(ROLE_ORDER):
                s = next((s for s in panel if s["role"] == role), None)
                if s is None or role in off:  # far above the rest: named, not drawn
                    continue
                per = s["mse_by_horizon"]
                ax.errorbar(list(per), [p["mean"] for p in per.values()],
                            yerr=[p["std"] for p in per.values()], marker="o", capsize=2,
                            linestyle="-" if role == LM_ROLE or role in ABLATIONS else "--",
                            color=f"C{k}", label=_name(role))
            if off:
                ax.text(0.02, 0.98, "off scale: " + "; ".join(
                    f"{_name(r)} {lo:.3g}–{hi:.3g}" for r, (lo, hi) in off.items()),
                    transform=ax.transAxes, va="top", fontsize=7)
            ax.set_title(f"{dataset} ({_share(fraction)})", fontsize=9)
            ax.set_xlabel("horizon (steps)")
            ax.set_ylabel("test MSE (± std, seeds)")
            ax.grid(alpha=0.3)
    bottom = legend_below(fig, [a for row in axes for a in row], ncol=5)
    fig.suptitle("reprogrammed LM and its ablations (solid) vs forecasters (dashed)",
                 fontsize=10)
    fig.tight_layout(rect=(0.0, bottom / len(fractions), 1.0, 1.0))
    fig.savefig(out / "mse_by_horizon.png", dpi=110, bbox_inches="tight")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("suites", type=Path, nargs="+",
                        help="bench forecast folders, the current protocol's first")
    parser.add_argument("--out", type=Path, required=True, help="folder for the overview")
    args = parser.parse_args(argv)
    rows, every, left_out = pick(args.suites)
    if not rows:
        sys.exit("no forecasting cells in these folders.")
    summary, paired = summarise(rows), pairs(every)
    mach = machine()
    meta = {"command": "python benchmarks/forecast_overview.py " + " ".join(
                shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
            "suites": [str(s) for s in args.suites], "machine": mach,
            "machine_text": describe(mach), "left_out": left_out,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overview.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "paired": paired}, indent=1) + "\n")
    write_csv(args.out / "overview.csv",
              [{**s, "horizons": " ".join(map(str, s["horizons"])),
                "seeds": " ".join(map(str, s["seeds"])),
                "protocols": " ".join(s["protocols"])} for s in summary],
              ["dataset", "fraction", "role", "mean_mse", "horizons", "seeds", "suite",
               "protocols", "method", "train_seconds_median"])
    (args.out / "overview.md").write_text(markdown(summary, paired, meta))
    plot(args.out, summary)
    print(f"wrote {args.out}/overview.md, overview.json, overview.csv, mse_by_horizon.png")


if __name__ == "__main__":
    main()
