"""Where the gap between a UCR run and V2Sa's published mean comes from, set by set.

For each method of the given ``bench ucr-v2s`` folders, each set's share of the gap to V2Sa's
mean over the 20 sets ((V2Sa − ours) / 20, in points), side by side, and the part that comes
from the sets where V2Sa reports 100% although its own paper's SOTA column is lower.

    python benchmarks/gap_to_published.py benchmarks/results/bench_ucr/sonify_side_minirocket_e0 \\
        benchmarks/results/bench_ucr/rocket_peers --out benchmarks/results/bench_ucr/gap_to_v2sa.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reprogram_bench.published import PUBLISHED, gap_shares
from reprogram_bench.ucr import summarise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="suite folders (results.json)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    columns: dict[str, dict[str, float]] = {}
    gaps: dict[str, float] = {}
    origin: dict[str, str] = {}  # method -> "folder, seeds ..."
    for run in args.runs:
        rows = json.loads((run / "results.json").read_text())["rows"]
        summary = summarise(rows)
        for method in dict.fromkeys(r["method"] for r in rows):
            gap = gap_shares(summary, method)
            if gap is None or method in columns or gap["sets"] != len(PUBLISHED):
                continue  # the first run that has a method on all 20 sets gives its column
            columns[method] = dict(gap["shares"])
            gaps[method] = gap["gap"]
            seeds = sorted({r["seed"] for r in rows if r["method"] == method})
            origin[method] = f"`{run.name}`, seeds {', '.join(map(str, seeds))}"
    if not columns:
        raise SystemExit("no method of these runs covers all 20 sets")
    perfect = [d for d, (sota, v2sa) in PUBLISHED.items() if v2sa == 100.0 and sota < 100.0]
    first = next(iter(columns))
    order = sorted(PUBLISHED, key=lambda d: -columns[first][d])
    names = list(columns)
    lines = [
        f"# Gap to V2Sa's published mean ({sum(v[1] for v in PUBLISHED.values()) / 20:.2f}), "
        "set by set",
        "",
        f"Command: `python benchmarks/gap_to_published.py {' '.join(map(str, args.runs))}`",
        "",
        "Each cell: (V2Sa − the method's mean over seeds) / 20, in points of the 20-set mean; "
        "a column sums to the method's gap. Columns:",
        "",
        *[f"{i}. `{m}` ({origin[m]})" for i, m in enumerate(names, start=1)],
        "",
        "| set | V2Sa | SOTA column | " + " | ".join(map(str, range(1, len(names) + 1))) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for d in order:
        sota, v2sa = PUBLISHED[d]
        cells = [f"{columns[m][d]:+.2f}" for m in names]
        lines.append(f"| {d} | {v2sa:.2f} | {sota:.2f} | " + " | ".join(cells) + " |")
    lines.append("| **gap** | | | " + " | ".join(f"**{gaps[m]:+.2f}**" for m in names) + " |")
    share = [sum(columns[m][d] for d in perfect) for m in names]
    lines.append(
        f"| of which {', '.join(perfect)} (V2Sa 100%, its SOTA column lower) | | | "
        + " | ".join(f"{v:+.2f}" for v in share)
        + " |"
    )
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
