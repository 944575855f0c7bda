"""Did the layering move any measured number? One cell of each suite, rerun and compared.

Reruns, into ``--out``, one small cell of each committed suite with today's code:

- vision: ``full+linear``, 10 shots, seed 0 (``benchmarks/results/bench_vision``);
- ucr-v2s: GunPoint seed 0, ``sonify+linear:init=probe,lr=0.001,raw=4@features:whisper-tiny.en``
  and ``minirocket`` at 20 epochs (``benchmarks/results/bench_ucr/all_3seeds``);
- blackbox: seed 0, every method on both targets (``benchmarks/results/bench_blackbox``);
- efficiency: EfficientNet-Lite0 at 128 px, 5 repeats (``benchmarks/results/bench_efficiency``;
  times depend on the machine's load, so the ratios are compared, not the milliseconds).

Then writes ``results.json`` and ``results.md`` beside them: each committed figure, the rerun's,
and whether they are equal. ``--reprogram`` runs another checkout's command instead (e.g. the
code before the move, to tell a code change from a machine change)::

    python benchmarks/layering_check.py --out benchmarks/results/layering_check
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))

from reprogram_bench.machine import machine  # noqa: E402

UCR_METHOD = "sonify+linear:init=probe,lr=0.001,raw=4@features:whisper-tiny.en"
SUITES: dict[str, list[str]] = {
    "vision": ["--shots", "10", "--seeds", "0", "--methods", "full+linear", "--epochs", "10"],
    "ucr-v2s": [
        "--sets",
        "GunPoint",
        "--seeds",
        "0",
        "--epochs",
        "20",
        "--methods",
        f"{UCR_METHOD},minirocket",
    ],
    "blackbox": ["--seeds", "0"],
    "efficiency": ["--sizes", "128", "--repeats", "5"],
}
COMMITTED = {
    "vision": RESULTS / "bench_vision" / "results.csv",
    "ucr-v2s": RESULTS / "bench_ucr" / "all_3seeds" / "results.csv",
    "blackbox": RESULTS / "bench_blackbox" / "results.csv",
    "efficiency": RESULTS / "bench_efficiency" / "results.csv",
}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _key(suite: str, row: dict[str, str]) -> tuple[str, ...]:
    if suite == "vision":
        return (row["method"], row["shots"], row["seed"])
    if suite == "ucr-v2s":
        return (row["method"], row["dataset"], row["seed"])
    if suite == "blackbox":
        return (row["target"], row["method"], row["seed"])
    return (row["size"], row["program"], row["mapping"])


def _figures(suite: str, row: dict[str, str]) -> dict[str, float]:
    if suite == "efficiency":
        return {
            "step/floor": float(row["step_ms"]) / float(row["floor_ms"]),
            "trainable_params": float(row["trainable_params"]),
        }
    out = {"test_accuracy": float(row["test_accuracy"])}
    if row.get("queries") not in (None, ""):
        out["queries"] = float(row["queries"])
    return out


def compare(suite: str, fresh: Path) -> list[dict[str, Any]]:
    """Each rerun cell beside its committed twin."""
    committed = {_key(suite, r): r for r in _rows(COMMITTED[suite])}
    out = []
    for row in _rows(fresh):
        key = _key(suite, row)
        old = committed.get(key)
        for name, value in _figures(suite, row).items():
            before = _figures(suite, old)[name] if old else None
            if suite == "efficiency" and name == "step/floor":
                same = before is not None and abs(value - before) <= 0.05
            else:
                same = before is not None and abs(value - before) < 1e-9
            out.append(
                {
                    "suite": suite,
                    "cell": " / ".join(key),
                    "figure": name,
                    "committed": before,
                    "rerun": value,
                    "equal": same,
                }
            )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--reprogram", default="reprogram", help="the command that runs the CLI")
    p.add_argument("--suites", default=",".join(SUITES))
    p.add_argument(
        "--compare-only", action="store_true", help="compare the suites already run in --out"
    )
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    commands, seconds = [], {}
    for suite in args.suites.split(","):
        cmd = [
            *shlex.split(args.reprogram),
            "bench",
            suite,
            "--out",
            str(out / suite),
            "--quiet",
            *SUITES[suite],
        ]
        commands.append(" ".join(shlex.quote(w) for w in cmd))
        if not args.compare_only:
            start = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=ROOT)
            seconds[suite] = round(time.perf_counter() - start, 1)
        rows += compare(suite, out / suite / "results.csv")
    record = {
        "command": " ".join(shlex.quote(w) for w in sys.argv),
        "suite_commands": commands,
        "seconds": seconds,
        "machine": machine(),
        "rows": rows,
    }
    (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# One cell of each suite, rerun after the layering",
        "",
        f"Command: `{record['command']}`  ",
        f"Machine: {record['machine'].get('cpu_model', '?')}, "
        f"{record['machine'].get('cpu_count', '?')} CPUs, "
        f"torch {record['machine'].get('torch', '?')}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Seconds per suite: {seconds}.",
        "",
        "Efficiency: the step/floor ratio counts as equal within 0.05 (times depend on load).",
        "",
        "| suite | cell | figure | committed | rerun | equal |",
        "|---|---|---|---:|---:|---|",
    ]
    for r in rows:
        before = "–" if r["committed"] is None else f"{r['committed']:.4f}"
        lines.append(
            f"| {r['suite']} | {r['cell']} | {r['figure']} | {before} | {r['rerun']:.4f} | "
            f"{'yes' if r['equal'] else 'NO'} |"
        )
    lines += ["", "Suite commands:", "", *[f"- `{c}`" for c in commands], ""]
    (out / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
