"""Paired comparison of methods from two ``bench ucr-v2s`` folders that share a peer.

A suite compares each reprogramming method with the peers of its own run. Two runs with the
same sets, seeds and selection draw the same splits, so their methods can be paired too; this
script checks that first (a method named in both runs, ``--anchor``, must score exactly the
same on every cell) and then prints the paired statistics of :mod:`reprogram_bench.compare`
for each ``OURS:THEIRS`` pair.

    python benchmarks/paired_across.py benchmarks/results/bench_ucr/rocket_peers \\
        benchmarks/results/bench_ucr/sonify_ridge_head_1se_3seeds \\
        --pairs "multirocket-hydra:minirocket,@reprogramming:multirocket-hydra"

``@reprogramming`` stands for the (single) reprogramming method of the runs; ``@1`` and ``@2``
for the reprogramming method of the first and of the second run (method names themselves hold
``:`` and ``,``, so name them this way when both runs have one). ``--seeds 0``
pairs on those seeds only (for a run that covers fewer seeds than the other); ``--anchor ""``
pairs runs that share no method, unchecked (same seeds, sets and ``--select`` give the same
splits). ``--plot
PATH.png`` also draws each pair's per-set scatter (peer on x, ours on y).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reprogram_bench.compare import _p_text, paired, plot_paired
from reprogram_bench.ucr import V2S_SETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs=2, help="two suite folders (results.json)")
    parser.add_argument(
        "--anchor",
        default="minirocket",
        help='method both runs must share, scoring identically ("": no check, for runs that '
        "share no method; their splits are then assumed equal)",
    )
    parser.add_argument("--pairs", required=True, help="OURS:THEIRS,... method names")
    parser.add_argument("--seeds", default=None, help="pair on these seeds only (e.g. 0,1)")
    parser.add_argument("--plot", type=Path, default=None, help="per-set scatter PNG")
    args = parser.parse_args()
    tables = [json.loads((run / "results.json").read_text())["rows"] for run in args.runs]
    if args.seeds is not None:
        keep = {int(s) for s in args.seeds.split(",")}
        tables = [[r for r in rows if r["seed"] in keep] for rows in tables]
    if args.anchor:
        anchors = [
            {
                (r["dataset"], r["seed"]): r["test_accuracy"]
                for r in rows
                if r["method"] == args.anchor
            }
            for rows in tables
        ]
        if not anchors[0] or anchors[0] != anchors[1]:
            raise SystemExit(
                f"{args.anchor} differs between the two runs (or is missing): their splits or "
                "settings differ, so their methods cannot be paired."
            )
        print(f"{args.anchor}: identical on all {len(anchors[0])} cells of both runs")
    else:
        shared = sorted({r["method"] for r in tables[0]} & {r["method"] for r in tables[1]})
        if shared:  # both runs' rows would be counted as one method's: name it the anchor
            raise SystemExit(
                f"the runs share {', '.join(shared)}: pass --anchor with one of them, which "
                "also checks that they draw the same splits."
            )
        print(
            "no anchor: the two runs are assumed to share their splits "
            "(same seeds, sets and --select)"
        )
    rows = tables[0] + [r for r in tables[1] if r["method"] != args.anchor]
    reprogramming = sorted({r["method"] for r in rows if r["kind"] == "reprogramming"})
    aliases = {"@reprogramming": reprogramming[0] if len(reprogramming) == 1 else None}
    for i, table in enumerate(tables, start=1):
        own = sorted({r["method"] for r in table if r["kind"] == "reprogramming"})
        aliases[f"@{i}"] = own[0] if len(own) == 1 else None
    print("| ours | theirs | sets | mean diff (points) | W / T / L | Wilcoxon p | per seed |")
    print("|---|---|---|---|---|---|---|")
    comparisons = []
    for pair in args.pairs.split(","):
        names = pair.split(":")
        for name in names:
            if name in aliases and aliases[name] is None:
                raise SystemExit(f"{name} names no single reprogramming method here")
        ours, theirs = (aliases.get(name) or name for name in names)
        result = paired(rows, ours, theirs, list(V2S_SETS))
        if result is None:
            raise SystemExit(f"{ours} and {theirs} share no finished set")
        comparisons.append((ours, theirs, result))
        seeds = ", ".join(f"{s}: {d:+.2f}" for s, d in result["per_seed"].items())
        print(
            f"| {ours} | {theirs} | {len(result['sets'])} | {result['mean_diff']:+.2f} | "
            f"{result['wins']} / {result['ties']} / {result['losses']} | "
            f"{_p_text(result['wilcoxon_p'])} | {seeds} |"
        )
    if args.plot is not None:
        plot_paired(args.plot, rows, comparisons)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
